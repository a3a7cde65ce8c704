def _can_use(method):
    return method == "poll"


class PollSelector:
    def select(self, timeout=None):
        return [timeout]


if _can_use('poll'):
    DefaultSelector = PollSelector

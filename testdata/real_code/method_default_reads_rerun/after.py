WRAPPER_ASSIGNMENTS = ('__module__', '__name__', '__qualname__', '__doc__',
                       '__annotations__', '__type_params__')
WRAPPER_UPDATES = ('__dict__',)


def update_wrapper(wrapper, wrapped, assigned=WRAPPER_ASSIGNMENTS, updated=WRAPPER_UPDATES):
    for attr in assigned:
        setattr(wrapper, attr, getattr(wrapped, attr))
    return wrapper


class Partial:
    def wrap(self, wrapper, wrapped, assigned=WRAPPER_ASSIGNMENTS):
        return update_wrapper(wrapper, wrapped, assigned)

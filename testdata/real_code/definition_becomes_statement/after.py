from collections import namedtuple


Event = namedtuple("Event", "time, priority, action")




def user():
    return 1

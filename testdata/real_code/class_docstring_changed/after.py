"""Utilities for comparing files and directories.

    Classes:
        dircmp

    Functions:
        cmp(f1, f2, shallow=True) -> int
"""

class dircmp:
    """A class that manages the comparison of 2 directories.

    dircmp(a, b, ignore=None, hide=None, *, shallow=True)
      A and B are directories.
      SHALLOW specifies whether to just check the stat signature (do not read
        the files).
        defaults to True.
    """

    def __init__(self, a, b, ignore=None, hide=None, *, shallow=True): # Initialize
        self.left = a
        self.right = b
        self.shallow = shallow

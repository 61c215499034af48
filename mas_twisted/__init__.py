"""mas-twisted: the Matrix Authentication Service on Twisted and Klein."""

__version__ = "0.1.0"

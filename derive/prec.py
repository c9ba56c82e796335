"""Printing precedences, shared by every printer: higher binds tighter."""

ATOM, POSTFIX, POW, UNARY, MUL, HAD, ADD = 100, 90, 60, 50, 40, 35, 30

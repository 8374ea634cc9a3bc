"""Pure policy code: the elastic pool model, back-testing and recommendation policies.

Nothing in this package does I/O or reads the clock; `now` and all data are arguments.
"""

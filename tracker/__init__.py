"""pool-tracker: watch and right-size elastic Qarnot pools."""
__version__ = "0.1.0"

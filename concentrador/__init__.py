"""concentrador: a CPCSCC metering-file concentrator (REE P.O. 10.11)."""

__version__ = "0.1.0"

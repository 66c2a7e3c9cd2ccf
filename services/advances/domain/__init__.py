"""The advances service's pure rules: whether an advance is due and how much (R2191-3 to
R2191-8), when its payment delay starts (R2192-24, R2192-25), and how it is recovered on
the holder's invoices (R2191-11, R2191-12). No I/O, no clock, no database.
"""

"""The payments service's pure rules: late-payment interest and the recovery indemnity owed
when the principal is paid after its due date (L2192-13, R2192-31, R2192-36, D2192-35), and
the calendar of payment runs on which payables are ordered (décret 2013-269 art. 12).
No I/O, no clock, no database.
"""

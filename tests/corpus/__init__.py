"""Generated supplier e-invoices (UBL, CII, Factur-X) for unit and end-to-end tests."""

-- The advance's « mise en paiement », as the payments service reports it.
ALTER TABLE advances ADD COLUMN paid_on date;

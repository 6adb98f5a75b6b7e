-- Fails on its second insert: a unique violation whose detail quotes the value.
CREATE TABLE duplicated (k TEXT PRIMARY KEY);
INSERT INTO duplicated VALUES ('secret@example.com'), ('secret@example.com');

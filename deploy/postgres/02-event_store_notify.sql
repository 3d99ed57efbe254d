-- Optional: wakes the relay at once on every insert into event_store, instead
-- of at its next poll (OUTBOX_POLL_INTERVAL). This is what
-- `OUTBOX_FORMAT=event_store publisher relay migrate` prints
-- (outbox.NotifyTriggerSQL("event_store")); deploy/relay_test.go keeps the two equal.
CREATE OR REPLACE FUNCTION "event_store_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('event_store', '');
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER "event_store_notify" AFTER INSERT ON "event_store" FOR EACH STATEMENT EXECUTE FUNCTION "event_store_notify"();

-- wrk script for bench/run-webhooks: the receiver's own ceiling, POSTing one signed event.
-- Environment: BODY, MSG_ID, TIMESTAMP, SIGNATURE.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = os.getenv("MSG_ID")
wrk.headers["webhook-timestamp"] = os.getenv("TIMESTAMP")
wrk.headers["webhook-signature"] = os.getenv("SIGNATURE")

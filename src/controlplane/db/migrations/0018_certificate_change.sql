-- A pinned node whose certificate changed: the fingerprint it presents now, kept by the
-- node poller until an operator accepts it (`POST /api/v1/nodes/{id}/repin`) or the node
-- presents the pinned one again. Nothing is sent to a node that fails its pin.
ALTER TABLE nodes ADD COLUMN presented_fingerprint text;

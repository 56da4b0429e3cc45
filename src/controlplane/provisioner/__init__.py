"""Workers that drive each tenant towards what its row says, one idempotent step at a time."""

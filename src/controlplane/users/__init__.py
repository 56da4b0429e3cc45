"""End users: the operator's customers, their accounts, and their own tenants."""

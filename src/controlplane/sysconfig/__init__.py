"""System settings an operator changes at run time, kept in the `system_settings` table."""

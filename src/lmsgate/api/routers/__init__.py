"""One router module per resource of the unified LMS API."""

// The daemon's callers (ukeyd, the tests) speak of roles and API errors in the API's own terms.
@_exported import UkeyAPI

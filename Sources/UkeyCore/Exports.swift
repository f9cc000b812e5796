// Hex and the JSON values live in UkeyCodec (bytes only, for the small tools that need no more);
// everything that speaks of digests sees them through UkeyCore.
@_exported import UkeyCodec

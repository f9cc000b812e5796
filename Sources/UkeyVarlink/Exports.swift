// The protocol's JSON is ukey's one codec (UkeyCodec): a client of the protocol sees its values
// without importing a second module.
@_exported import UkeyCodec

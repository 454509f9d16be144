//! HTTP Digest (RFC 7616) on the client side.

//! What handlers take from a request besides its path and query: the
//! body (whole or streamed), a multipart form, the page asked for.

pub mod body;
pub mod form;
pub mod page;

//! The binary's client commands: they call a running server over HTTP, as
//! any client would, and use nothing else of the crate.

pub mod upload;

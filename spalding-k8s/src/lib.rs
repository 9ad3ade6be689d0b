//! Spalding's adapters: implementations of `spalding-core`'s ports that do
//! real I/O. The operating system's CSPRNG ([`entropy::OsEntropy`]), and the
//! partner protocol of DESIGN.md: the party's VCP [`identity`], document
//! [`signing`], the hardened HTTPS [`transport`] (with its [`retry`] policy),
//! the partner-info [`server`] and [`inspect`], what an operator runs before
//! admitting a partner. The Kubernetes `Cluster` follows.

pub mod entropy;
pub mod identity;
pub mod inspect;
pub mod retry;
pub mod sample;
pub mod server;
pub mod signing;
pub mod transport;

//! Spalding's adapters: implementations of `spalding-core`'s ports that do
//! real I/O. So far the operating system's CSPRNG ([`entropy::OsEntropy`]);
//! the Kubernetes `Cluster`, the HTTPS `PartnerTransport` and the
//! partner-info server follow.

pub mod entropy;

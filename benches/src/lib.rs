//! # cloudbase-auth-benches
//!
//! What the criterion benches in `benches/` share: realistic replies and engines in
//! known states ([`samples`]), the owned serde structs a std client would parse the
//! same bytes into ([`owned`], the baselines), and a counting global allocator
//! ([`alloc`]) that proves the engine's rounds allocate nothing. See README.md for
//! what each bench measures and how to run one.

pub mod alloc;
pub mod owned;
pub mod samples;

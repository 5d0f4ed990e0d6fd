//! # cloudbase-auth-benches
//!
//! What the criterion benches in `benches/` share: realistic replies and engines in
//! known states ([`samples`]), the owned serde structs a std client would parse the
//! same bytes into ([`owned`], the baselines), and requests through the server's router
//! in-process ([`router`]). The counting global allocator that proves
//! the engine's rounds allocate nothing is `cloudbase_auth_testkit::alloc`. See README.md for
//! what each bench measures and how to run one.

pub mod owned;
pub mod router;
pub mod samples;

//! A small deterministic generator for request ids and the device id, seeded by the
//! host. Not for secrets: the core holds none it generates (tokens come from the server).
//!
//! Written out rather than taken from `rand_xoshiro` (the same algorithm): that crate's
//! generator has no `const` constructor, which `Engine::new` (a `const fn`, so the wasm
//! adapter's engine can be a `static`) needs, and with an `Option` around it the wasm
//! module was 537 bytes larger (`scripts/build-wasm.sh`).

/// xoshiro128++ (public domain reference algorithm by Blackman and Vigna).
#[derive(Debug, Clone)]
pub(crate) struct Rng([u32; 4]);

impl Rng {
    /// Placeholder state until `init` brings the host's seed.
    pub(crate) const UNSEEDED: Rng = Rng([0x9E37_79B9, 0x243F_6A88, 0xB7E1_5162, 0x1]);

    pub(crate) fn new(seed: [u8; 16]) -> Self {
        let mut s = [0u32; 4];
        for (i, chunk) in seed.chunks_exact(4).enumerate() {
            s[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        if s == [0; 4] {
            // xoshiro must not start from all zeros.
            return Self::UNSEEDED;
        }
        Rng(s)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        result
    }

    /// 32 lowercase hex characters (the SDK's request/device id shape).
    pub(crate) fn hex32(&mut self) -> heapless::String<32> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = heapless::String::new();
        for _ in 0..4 {
            let mut v = self.next_u32();
            for _ in 0..8 {
                let _ = out.push(HEX[(v & 0xf) as usize] as char);
                v >>= 4;
            }
        }
        out
    }
}

//! Token-bucket rate limits keyed by client IP or device id. Each bucket holds one
//! minute's allowance and refills continuously; the table is bounded so a flood of
//! distinct keys cannot grow memory without limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked; beyond this, full (idle) buckets are dropped first.
const KEYS_MAX: usize = 50_000;
/// Longest key kept (device ids are 16..=48 characters; longer ones are cut).
const KEY_MAX: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit: `per_minute` requests per key per minute, bursting up to that many.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter; `per_minute == 0` allows everything.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; when the key is over its limit, `Err` says how long
    /// until it has a token again.
    pub(crate) fn allow(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let refill_per_sec = capacity / 60.0;
        // The time one token takes to come back.
        let one_token = Duration::from_secs_f64(1.0 / refill_per_sec);
        let key = truncate(key, KEY_MAX);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= KEYS_MAX && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * refill_per_sec < capacity
            });
            if buckets.len() >= KEYS_MAX {
                // Still full of active keys: refuse new ones rather than grow (some
                // bucket fills up again within one token's time at the latest).
                return Err(one_token);
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * refill_per_sec).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / refill_per_sec,
            ))
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let l = RateLimiter::new(3);
        let t0 = Instant::now();
        assert!(l.allow("a", t0).is_ok());
        assert!(l.allow("a", t0).is_ok());
        assert!(l.allow("a", t0).is_ok());
        // 3 per minute: one token every 20 s.
        assert_eq!(l.allow("a", t0), Err(Duration::from_secs(20)));
        assert!(l.allow("b", t0).is_ok());
        let wait = l.allow("a", t0 + Duration::from_secs(5)).unwrap_err();
        assert!(wait.abs_diff(Duration::from_secs(15)) < Duration::from_millis(1));
        assert!(l.allow("a", t0 + Duration::from_secs(21)).is_ok());
        assert!(l.allow("a", t0 + Duration::from_secs(21)).is_err());
        assert!(RateLimiter::new(0).allow("a", t0).is_ok());
        assert_eq!(truncate("ééé", 3), "é");
    }
}

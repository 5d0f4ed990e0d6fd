//! The one static engine and its buffers, behind the only `unsafe` of the crate (wasm32)
//! or a `Mutex` (host builds). [`with`] is the single way in; exports call it exactly
//! once and never nest.

use crate::abi::EXCHANGE_LEN;
use crate::host::Host;
use cloudbase_auth_core::Engine;
use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;

/// The engine and its drain flag (a data segment: `Engine::new()` is not all zeros).
pub(crate) struct State {
    pub(crate) engine: Engine,
    /// An input reached the engine and `cba_poll` has not returned the timeout since.
    pub(crate) undrained: bool,
}

/// The buffers: all zeros, so they cost no bytes in the module (`.bss`).
pub(crate) struct Buffers {
    /// Lent to `Engine::poll_output`; never seen by the host.
    poll: [u8; POLL_BUFFER_MIN],
    /// The exchange buffer (see the crate docs).
    xbuf: [u8; EXCHANGE_LEN],
}

impl State {
    pub(crate) const fn new() -> Self {
        State {
            engine: Engine::new(),
            undrained: false,
        }
    }
}

impl Buffers {
    const fn new() -> Self {
        Buffers {
            poll: [0; POLL_BUFFER_MIN],
            xbuf: [0; EXCHANGE_LEN],
        }
    }
}

fn host<'a>(s: &'a mut State, b: &'a mut Buffers) -> Host<'a> {
    Host {
        engine: &mut s.engine,
        undrained: &mut s.undrained,
        poll: &mut b.poll,
        xbuf: &mut b.xbuf,
    }
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "a static arena on a single-threaded target")]
mod global {
    use super::{Buffers, Host, State, host};
    use core::cell::UnsafeCell;

    struct Global<T>(UnsafeCell<T>);

    // SAFETY: wasm32 without the `atomics` target feature (a compile_error in lib.rs)
    // runs one thread per instance, so these statics are never reached from two threads.
    unsafe impl<T> Sync for Global<T> {}

    static STATE: Global<State> = Global(UnsafeCell::new(State::new()));
    static BUFFERS: Global<Buffers> = Global(UnsafeCell::new(Buffers::new()));

    pub(crate) fn with<R>(f: impl FnOnce(&mut Host<'_>) -> R) -> R {
        // SAFETY: the only references into STATE and BUFFERS are created here, and live
        // only during `f`. Single thread (above); the module has no imports, so no JS
        // runs while an export is on the stack and no export can re-enter; no caller
        // nests `with`. The host writes the exchange buffer only between export calls,
        // when no reference into it is live.
        let (s, b) = unsafe { (&mut *STATE.0.get(), &mut *BUFFERS.0.get()) };
        f(&mut host(s, b))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod global {
    use super::{Buffers, Host, State, host};
    use std::sync::{Mutex, PoisonError};

    static HOST: Mutex<(State, Buffers)> = Mutex::new((State::new(), Buffers::new()));

    pub(crate) fn with<R>(f: impl FnOnce(&mut Host<'_>) -> R) -> R {
        // A panic while locked (tests only: the code under test never panics) must not
        // wedge the remaining tests.
        let mut guard = HOST.lock().unwrap_or_else(PoisonError::into_inner);
        let (s, b) = &mut *guard;
        f(&mut host(s, b))
    }
}

pub(crate) use global::with;

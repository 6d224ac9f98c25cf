//! Opening a sled database that was closed a moment ago.
//!
//! sled releases its file lock only when its background flusher thread has stopped, which can
//! take up to one flush interval after the last handle is dropped; an immediate reopen (a
//! restart, a reload, a test) then fails with "could not acquire lock". Waiting briefly for the
//! lock turns that race into a short delay; any other error is returned at once. Used by the
//! edge's store on the phone and by the cloud's sled stores.

use std::time::{Duration, Instant};

/// How long [`open_waiting_for_lock`] waits for another handle to release the lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the database that `config()` describes, retrying for up to [`LOCK_WAIT`] while its
/// lock is held (a fresh `Config` per attempt: a failed open leaves nothing behind).
pub fn open_waiting_for_lock(config: impl Fn() -> sled::Config) -> Result<sled::Db, sled::Error> {
    let give_up = Instant::now() + LOCK_WAIT;
    loop {
        match config().open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_lock_released_soon_and_gives_up_on_one_held_longer() {
        let dir = tempfile::tempdir().unwrap();
        let config = || sled::Config::new().path(dir.path());
        let held = config().open().unwrap();
        let started = Instant::now();
        let err = open_waiting_for_lock(config).unwrap_err();
        assert!(err.to_string().contains("could not acquire lock"), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT);

        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let reopened = open_waiting_for_lock(config).unwrap();
        releaser.join().unwrap();
        drop(reopened);
    }
}

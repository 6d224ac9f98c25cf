//! The CLI's store key: a file of 64 hex digits, created owner-only (0600) with a fresh random
//! key the first time a store is opened. It lies beside the data it protects (by default in the
//! store directory), so it only keeps plaintext out of the store's files (a copied `db`, a
//! backup of the sled files alone, a forensic read of freed pages): whoever can read the whole
//! directory as its owner reads the key too. A key held by hardware (the Android Keystore,
//! passed in by the app through the engine config) is stronger.
//!
//! The device key (X25519, `DATA_DIR/device.key`, same format and same weakness) is kept the same
//! way: model packages come sealed to it, and the installed model is stored sealed under it.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::{Context, Result};
use smsguard_edge::engine::{DeviceKey, StoreKey};

/// The file name of the key in the store directory when no --key-file is given.
pub const DEFAULT_KEY_FILE: &str = "store.key";

/// The device key's file name in the data directory.
pub const DEVICE_KEY_FILE: &str = "device.key";

/// The store key in `path`, or a fresh one written there (0600) when the file does not exist.
pub fn load_or_create(path: &Path) -> Result<StoreKey> {
    load_or_create_hex(
        path,
        "store key",
        || StoreKey::generate().to_hex(),
        |text| StoreKey::from_hex(text).map_err(anyhow::Error::from),
    )
}

/// The device key in `path`, or a fresh one written there (0600) when the file does not exist.
pub fn load_or_create_device_key(path: &Path) -> Result<DeviceKey> {
    load_or_create_hex(
        path,
        "device key",
        || DeviceKey::generate().to_hex(),
        |text| DeviceKey::from_hex(text).map_err(anyhow::Error::from),
    )
}

/// The key of hex `text` in `path`, created from `fresh` when the file does not exist.
fn load_or_create_hex<K>(
    path: &Path,
    what: &str,
    fresh: fn() -> String,
    parse: fn(&str) -> Result<K>,
) -> Result<K> {
    match fs::read_to_string(path) {
        Ok(text) => {
            parse(&text).with_context(|| format!("{} does not hold a {what}", path.display()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create(path, what, &fresh())?;
            load_or_create_hex(path, what, fresh, parse)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the {what} {}", path.display())),
    }
}

/// Writes a fresh key to a temporary file, then links it into place: a second process creating
/// the same key at the same moment finds either no file or a whole one, and uses the winner's.
fn create(path: &Path, what: &str, hex: &str) -> Result<()> {
    let context = || format!("cannot create the {what} {}", path.display());
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(format!("{hex}\n").as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(context),
    }
}

//! Made-up messages for the end-to-end tests. Each generator yields distinct texts (distinct
//! fingerprints), so tests sharing a server do not see each other's cache entries.

/// A sender that no rule lists.
pub const SENDER: &str = "+8613800000000";

/// Distinct senders, so the cloud's per-sender reputation of one test does not leak into
/// another that shares its server.
pub fn sender(n: usize) -> String {
    format!("+86139{n:08}")
}

const NAMES: [&str; 8] = [
    "Anna", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana",
];
const PLANS: [&str; 8] = [
    "lunch",
    "the dentist",
    "football practice",
    "the piano lesson",
    "dinner at your parents",
    "the library",
    "a walk by the river",
    "coffee",
];
const DAYS: [&str; 6] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Saturday morning",
    "Sunday evening",
];

/// An everyday personal message; `n` selects one of 384 distinct texts.
pub fn ham(n: usize) -> String {
    let name = NAMES[n % NAMES.len()];
    let plan = PLANS[(n / NAMES.len()) % PLANS.len()];
    let day = DAYS[(n / (NAMES.len() * PLANS.len())) % DAYS.len()];
    format!("Hi {name}, are we still on for {plan} on {day}? Call me when you get home.")
}

const BANKS: [&str; 6] = [
    "national bank",
    "credit union",
    "card centre",
    "savings bank",
    "payment service",
    "tax office",
];
const THREATS: [&str; 4] = [
    "has been frozen",
    "will be suspended today",
    "shows an unusual login",
    "is locked for security",
];

/// A phishing text; `n` selects one of 24 distinct texts.
pub fn phishing(n: usize) -> String {
    let bank = BANKS[n % BANKS.len()];
    let threat = THREATS[(n / BANKS.len()) % THREATS.len()];
    format!(
        "URGENT: your {bank} account {threat}. Verify your identity and card PIN now at \
         http://secure-verify-login.example/account or lose access within 24 hours."
    )
}

/// A shorter phishing text (no PIN, no deadline), which a model may only tag; `n` selects one
/// of 24 distinct texts.
pub fn phishing_short(n: usize) -> String {
    let bank = BANKS[n % BANKS.len()];
    let threat = THREATS[(n / BANKS.len()) % THREATS.len()];
    format!(
        "Your {bank} account {threat}. Verify your identity now at \
         http://secure-verify-login.example/account"
    )
}

/// A made-up campaign used by the feedback test: bland enough that nothing flags it before
/// users report it.
pub fn campaign(variant: usize) -> String {
    let day = DAYS[variant % DAYS.len()];
    format!(
        "Hello neighbour, the community garden group meets {day} near the old mill. \
         Bring gloves and a friend, tea is provided."
    )
}

//! (tests added here)

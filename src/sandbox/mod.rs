//! The simulated vendors (see DESIGN §7).

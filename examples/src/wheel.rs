//! The roulette wheel web service: an American wheel (0, 00 and 1..36).

use rpcs_core::{Fault, MethodTable};

/// The numbers that are red on a roulette wheel.
const RED: [u8; 18] = [
    1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36,
];

/// The most spins one `spinList` call returns, so one call cannot exhaust memory.
pub const MAX_SPINS: i64 = 100_000;

/// One spin's outcome: number ("0".."36" or "00"), color, parity and half.
pub type Spin = (String, &'static str, &'static str, &'static str);

/// Describes the pocket `n`, where 37 stands for "00".
pub fn pocket(n: u8) -> Spin {
    if n == 0 || n == 37 {
        let number = if n == 0 { "0" } else { "00" };
        return (number.to_owned(), "GREEN", "ZERO", "ZERO");
    }
    let color = if RED.contains(&n) { "RED" } else { "BLACK" };
    let parity = if n.is_multiple_of(2) { "EVEN" } else { "ODD" };
    let half = if n <= 18 { "LOW" } else { "HIGH" };
    (n.to_string(), color, parity, half)
}

/// One random spin.
pub fn spin() -> Spin {
    pocket(fastrand::u8(0..=37))
}

/// `spins` random spins (1 when not given).
pub fn spin_list(spins: Option<i64>) -> Result<Vec<Spin>, Fault> {
    let n = spins.unwrap_or(1);
    if !(0..=MAX_SPINS).contains(&n) {
        return Err(Fault::named(
            "ValueError",
            format!("spins must be between 0 and {MAX_SPINS}, not {n}"),
        ));
    }
    Ok((0..n).map(|_| spin()).collect())
}

/// Registers `spin` and `spinList`.
pub fn register(t: &mut MethodTable) {
    t.register(
        "spin",
        "Spin the wheel: returns [number, color, even/odd, high/low].",
        spin,
    );
    t.register(
        "spinList",
        "Spin the wheel `spins` times (default 1): returns a list of spin results.",
        spin_list,
    )
    .params(&["spins"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pockets() {
        assert_eq!(pocket(0), ("0".into(), "GREEN", "ZERO", "ZERO"));
        assert_eq!(pocket(37), ("00".into(), "GREEN", "ZERO", "ZERO"));
        assert_eq!(pocket(1), ("1".into(), "RED", "ODD", "LOW"));
        assert_eq!(pocket(2), ("2".into(), "BLACK", "EVEN", "LOW"));
        assert_eq!(pocket(19), ("19".into(), "RED", "ODD", "HIGH"));
        assert_eq!(pocket(36), ("36".into(), "RED", "EVEN", "HIGH"));
        let reds = (1..=36).filter(|n| pocket(*n).1 == "RED").count();
        assert_eq!(reds, 18);
    }

    #[test]
    fn spin_list_bounds() {
        assert_eq!(spin_list(None).unwrap().len(), 1);
        assert_eq!(spin_list(Some(5)).unwrap().len(), 5);
        assert!(spin_list(Some(-1)).is_err());
        assert!(spin_list(Some(MAX_SPINS + 1)).is_err());
    }
}

//! Amounts for people to read: integer minor units shown with the currency's number of
//! decimals (ISO 4217 minor-unit exponent), e.g. `1250` EUR as `12.50 EUR`. Integer
//! arithmetic only: no float ever touches money.

use domain::money::Currency;

/// Currencies without minor units (ISO 4217 exponent 0).
const NO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF",
    "XPF",
];

/// Currencies with thousandths (ISO 4217 exponent 3).
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// How many decimals the currency `code` has: 0, 3, or 2 for all others.
pub fn minor_unit_exponent(code: &str) -> u32 {
    if NO_DECIMALS.contains(&code) {
        0
    } else if THREE_DECIMALS.contains(&code) {
        3
    } else {
        2
    }
}

/// `minor_units` of `currency` as text: `12.50 EUR`, `1250 JPY`, `1.250 KWD`, `-0.05 USD`.
pub fn format_amount(minor_units: i64, currency: Currency) -> String {
    let code = currency.as_str();
    let sign = if minor_units < 0 { "-" } else { "" };
    // `unsigned_abs` keeps `i64::MIN` exact.
    let magnitude = minor_units.unsigned_abs();
    match minor_unit_exponent(code) {
        0 => format!("{sign}{magnitude} {code}"),
        exponent => {
            let scale = 10u64.pow(exponent);
            let whole = magnitude / scale;
            let fraction = magnitude % scale;
            let width = exponent as usize;
            format!("{sign}{whole}.{fraction:0width$} {code}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(minor_units: i64, code: &str) -> String {
        format_amount(minor_units, Currency::parse(code).expect("currency"))
    }

    #[test]
    fn euros_have_two_decimals() {
        assert_eq!(amount(1250, "EUR"), "12.50 EUR");
        assert_eq!(amount(5, "EUR"), "0.05 EUR");
        assert_eq!(amount(0, "EUR"), "0.00 EUR");
        assert_eq!(amount(100, "USD"), "1.00 USD");
        assert_eq!(amount(99, "GBP"), "0.99 GBP");
    }

    #[test]
    fn yen_and_the_other_currencies_without_minor_units_have_no_decimals() {
        assert_eq!(amount(1250, "JPY"), "1250 JPY");
        assert_eq!(amount(0, "JPY"), "0 JPY");
        for code in NO_DECIMALS {
            assert_eq!(amount(7, code), format!("7 {code}"));
        }
    }

    #[test]
    fn dinars_and_the_other_currencies_with_thousandths_have_three_decimals() {
        assert_eq!(amount(1250, "KWD"), "1.250 KWD");
        assert_eq!(amount(5, "KWD"), "0.005 KWD");
        assert_eq!(amount(1_000, "BHD"), "1.000 BHD");
        for code in THREE_DECIMALS {
            assert_eq!(amount(42, code), format!("0.042 {code}"));
        }
    }

    #[test]
    fn every_listed_currency_is_a_currency_the_domain_accepts() {
        for code in NO_DECIMALS.iter().chain(THREE_DECIMALS) {
            assert!(Currency::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn large_amounts_are_exact() {
        // The largest order: 50 lines of 1000 units at the highest price.
        assert_eq!(amount(500_000_000_000_000, "EUR"), "5000000000000.00 EUR");
        assert_eq!(amount(500_000_000_000_001, "JPY"), "500000000000001 JPY");
        assert_eq!(amount(9_007_199_254_740_993, "EUR"), "90071992547409.93 EUR");
        assert_eq!(amount(i64::MAX, "EUR"), "92233720368547758.07 EUR");
        assert_eq!(amount(i64::MAX, "KWD"), "9223372036854775.807 KWD");
        assert_eq!(amount(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }

    #[test]
    fn negative_amounts_keep_their_sign_before_the_whole_part() {
        assert_eq!(amount(-5, "USD"), "-0.05 USD");
        assert_eq!(amount(-1250, "JPY"), "-1250 JPY");
    }
}

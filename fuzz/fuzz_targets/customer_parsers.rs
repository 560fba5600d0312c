//! The customers' phone and date parsers on any text: the first byte picks
//! a campaign region and the international flag, the rest is split into a
//! date format and the values read with it.
#![no_main]

use intake::domain::customer::{DateFormat, DateRule, normalize_phone};
use libfuzzer_sys::fuzz_target;
use phonenumber::country::Id;

const REGIONS: [Id; 6] = [Id::IL, Id::CZ, Id::US, Id::GB, Id::DE, Id::IN];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let region = REGIONS[usize::from(first) % REGIONS.len()];
    let international = first & 0x80 != 0;
    let _ = normalize_phone(text, region, international);

    let (spec, value) = text.split_once('|').unwrap_or((text, text));
    let _ = DateRule::Rfc3339.parse(value);
    if let Ok(format) = DateFormat::parse(spec) {
        for tz in [
            chrono_tz::Europe::Prague,
            chrono_tz::Asia::Jerusalem,
            chrono_tz::UTC,
        ] {
            let rule = DateRule::Local {
                format: format.clone(),
                tz,
            };
            let _ = rule.parse(value);
        }
    }
});

//! "Did you mean" suggestions for misspelt names.

/// The candidate closest to `name`, if one is close enough to be a likely typo.
pub fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_lowercase())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// ` (did you mean 'x'?)`, or an empty string when nothing is close.
pub fn hint<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    closest(name, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let names = ["album_id", "artist_id", "track_id"];
        assert_eq!(closest("album_idd", names), Some("album_id"));
        assert_eq!(closest("zzz", names), None);
        assert_eq!(hint("trackid", names), " (did you mean 'track_id'?)");
    }
}

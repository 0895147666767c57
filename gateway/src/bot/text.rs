//! What the caller heard of a chunk's text when it was cut: the delivered and remaining text
//! reported with a barge-in, so the bot's next reply neither forgets nor repeats.
//!
//! With word timings (from the TTS engine) a word counts as delivered once its end has been
//! played. Without them the text is split in proportion to the played time, by characters
//! (a better stand-in for speaking time than a word count: long words take longer), and only
//! whole words count as delivered. Pure functions: no I/O, no clock.

/// One word of a chunk with its time span, relative to the chunk's first sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordTime {
    pub word: String,
    pub start_ms: u32,
    pub end_ms: u32,
}

/// The chunk's text split at the cut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextSplit {
    pub delivered: String,
    pub remaining: String,
}

/// Splits `text` (and/or `words`) after `played_ms` of a chunk lasting `total_ms`.
pub fn split(text: &str, words: &[WordTime], played_ms: u32, total_ms: u32) -> TextSplit {
    if !words.is_empty() {
        return split_by_timings(text, words, played_ms);
    }
    split_proportional(text, played_ms, total_ms)
}

/// Word timings decide; the result is carved out of `text` when the words can be found in it
/// in order (keeping its punctuation), else built from the words themselves.
fn split_by_timings(text: &str, words: &[WordTime], played_ms: u32) -> TextSplit {
    let heard = words.iter().take_while(|w| w.end_ms <= played_ms).count();
    if let Some(cut) = text_position_after(text, words.iter().take(heard).map(|w| &*w.word)) {
        // Punctuation glued to the last heard word ("world," / "done.") belongs to it.
        let end = match heard {
            0 => 0,
            _ => text[cut..]
                .find(char::is_whitespace)
                .map_or(text.len(), |i| cut + i),
        };
        return TextSplit {
            delivered: text[..end].trim().to_string(),
            remaining: text[end..].trim().to_string(),
        };
    }
    let join = |ws: &[WordTime]| {
        ws.iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    TextSplit {
        delivered: join(&words[..heard]),
        remaining: join(&words[heard..]),
    }
}

/// Byte offset in `text` just after the last of `words`, each searched in order after the
/// previous one, ignoring ASCII case (TTS engines often normalise it). `Some(0)` for no
/// words; `None` if `text` is empty or a word is missing.
fn text_position_after<'a>(text: &str, words: impl Iterator<Item = &'a str>) -> Option<usize> {
    if text.trim().is_empty() {
        return None;
    }
    // ASCII lower-casing keeps byte offsets, so positions map back onto `text`.
    let haystack = text.to_ascii_lowercase();
    let mut at = 0;
    for word in words {
        let word = word.trim().to_ascii_lowercase();
        if word.is_empty() {
            continue;
        }
        let found = haystack.get(at..)?.find(&word)?;
        at += found + word.len();
    }
    Some(at)
}

/// The first `played_ms / total_ms` of the text's characters, rounded down to whole words.
fn split_proportional(text: &str, played_ms: u32, total_ms: u32) -> TextSplit {
    let text = text.trim();
    if text.is_empty() {
        return TextSplit::default();
    }
    if total_ms == 0 || played_ms >= total_ms {
        return TextSplit {
            delivered: text.to_string(),
            remaining: String::new(),
        };
    }
    let chars = text.chars().count() as u64;
    let heard_chars = chars * u64::from(played_ms) / u64::from(total_ms);
    // Words (with their punctuation) are delivered when their last character was heard.
    let mut end = 0usize;
    let mut word_end_chars = 0u64;
    let mut in_word = false;
    for (char_index, (byte, c)) in (0u64..).zip(text.char_indices()) {
        if c.is_whitespace() {
            if in_word {
                if word_end_chars <= heard_chars {
                    end = byte;
                } else {
                    break;
                }
                in_word = false;
            }
        } else {
            in_word = true;
            word_end_chars = char_index + 1;
        }
    }
    if in_word && word_end_chars <= heard_chars {
        end = text.len();
    }
    TextSplit {
        delivered: text[..end].trim().to_string(),
        remaining: text[end..].trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(word: &str, start_ms: u32, end_ms: u32) -> WordTime {
        WordTime {
            word: word.into(),
            start_ms,
            end_ms,
        }
    }

    fn s(delivered: &str, remaining: &str) -> TextSplit {
        TextSplit {
            delivered: delivered.into(),
            remaining: remaining.into(),
        }
    }

    #[test]
    fn proportional_split_keeps_whole_words() {
        // 20 characters; 50 % = 10 characters: "hello" (5) ends within, "world" ends at 11.
        let text = "hello world, bye now";
        assert_eq!(split(text, &[], 500, 1000), s("hello", "world, bye now"));
        assert_eq!(split(text, &[], 550, 1000), s("hello", "world, bye now"));
        assert_eq!(split(text, &[], 600, 1000), s("hello world,", "bye now"));
        assert_eq!(split(text, &[], 0, 1000), s("", "hello world, bye now"));
        assert_eq!(split(text, &[], 999, 1000), s("hello world, bye", "now"));
        assert_eq!(split(text, &[], 1000, 1000), s("hello world, bye now", ""));
        assert_eq!(split(text, &[], 5000, 1000), s("hello world, bye now", ""));
    }

    #[test]
    fn proportional_split_edge_cases() {
        assert_eq!(split("", &[], 100, 1000), s("", ""));
        assert_eq!(split("   ", &[], 100, 1000), s("", ""));
        assert_eq!(
            split("word", &[], 100, 0),
            s("word", ""),
            "zero-length chunk"
        );
        assert_eq!(split("  one   two  ", &[], 1000, 1000), s("one   two", ""));
        // Multi-byte characters count as one character each and never split.
        assert_eq!(split("héllo wörld", &[], 600, 1000), s("héllo", "wörld"));
    }

    #[test]
    fn timings_decide_when_given() {
        let words = [
            w("Hello", 0, 400),
            w("world", 450, 900),
            w("again", 950, 1400),
        ];
        let text = "Hello, world! Again?";
        // Timings win over proportion; words match the text ignoring case, and punctuation
        // glued to the last heard word stays with it.
        assert_eq!(split(text, &words, 899, 1400), s("Hello,", "world! Again?"));
        assert_eq!(split(text, &words, 900, 1400), s("Hello, world!", "Again?"));
        assert_eq!(
            split(text, &words, 100, 1400),
            s("", "Hello, world! Again?")
        );
        assert_eq!(
            split(text, &words, 1400, 1400),
            s("Hello, world! Again?", "")
        );
    }

    #[test]
    fn timings_without_matching_text_use_the_words() {
        let words = [w("one", 0, 300), w("two", 300, 600), w("three", 600, 900)];
        assert_eq!(split("", &words, 650, 900), s("one two", "three"));
        assert_eq!(
            split("completely different", &words, 650, 900),
            s("one two", "three")
        );
    }
}

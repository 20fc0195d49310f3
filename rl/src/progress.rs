//! The look of the progress bars every long stage (data, SFT, GRPO, evaluation, benchmarks)
//! shares.

use indicatif::ProgressStyle;

/// A bar style from an `indicatif` template, drawn with `=>`.
pub(crate) fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

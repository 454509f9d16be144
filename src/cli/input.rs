//! The options that say how the input is laid out, shared by `run` and
//! `validate`.

use crate::input::InputFlags;
use crate::input::mapping::{parse_column_flag, parse_delimiter};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputArgs {
    /// The byte between fields: `;`, `tab` (or `\t`), `|`... (overrides `[input] delimiter`;
    /// default `,`)
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,

    /// Read invitesync's column NAME from the file's column HEADER, e.g.
    /// --column email="Email Address"; repeat for each (overrides `[input.columns]`)
    #[arg(long = "column", value_name = "NAME=HEADER", value_parser = parse_column_flag)]
    pub columns: Vec<(usize, String)>,

    /// The vendor of every row, for a file without a vendor column (overrides `[input] vendor`)
    #[arg(long, value_name = "NAME")]
    pub vendor: Option<String>,
}

impl InputArgs {
    pub fn flags(&self) -> InputFlags {
        InputFlags {
            delimiter: self.delimiter,
            columns: self.columns.clone(),
            vendor: self.vendor.clone(),
        }
    }
}

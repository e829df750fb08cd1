//! Derived files computed from the originals (issue 12). This file is only what h12nii's
//! modules need to compile; the seam itself comes from h12png's branch at merge.

pub mod bids;
pub mod nifti;
pub mod seam;

//! Golden test of `mounts/abide.toml`: the nilearn PCP tree zipped (106-column phenotypic CSV,
//! no_filename row, site spellings, -9999) and the raw layout.

use crate::common::*;
use serde_json::json;

const HEADER: &str = ",Unnamed: 0,SUB_ID,X,subject,SITE_ID,FILE_ID,DX_GROUP,DSM_IV_TR,AGE_AT_SCAN,SEX,HANDEDNESS_CATEGORY,HANDEDNESS_SCORES,FIQ,VIQ,PIQ,FIQ_TEST_TYPE,VIQ_TEST_TYPE,PIQ_TEST_TYPE,ADI_R_SOCIAL_TOTAL_A,ADI_R_VERBAL_TOTAL_BV,ADI_RRB_TOTAL_C,ADI_R_ONSET_TOTAL_D,ADI_R_RSRCH_RELIABLE,ADOS_MODULE,ADOS_TOTAL,ADOS_COMM,ADOS_SOCIAL,ADOS_STEREO_BEHAV,ADOS_RSRCH_RELIABLE,ADOS_GOTHAM_SOCAFFECT,ADOS_GOTHAM_RRB,ADOS_GOTHAM_TOTAL,ADOS_GOTHAM_SEVERITY,SRS_VERSION,SRS_RAW_TOTAL,SRS_AWARENESS,SRS_COGNITION,SRS_COMMUNICATION,SRS_MOTIVATION,SRS_MANNERISMS,SCQ_TOTAL,AQ_TOTAL,COMORBIDITY,CURRENT_MED_STATUS,MEDICATION_NAME,OFF_STIMULANTS_AT_SCAN,VINELAND_RECEPTIVE_V_SCALED,VINELAND_EXPRESSIVE_V_SCALED,VINELAND_WRITTEN_V_SCALED,VINELAND_COMMUNICATION_STANDARD,VINELAND_PERSONAL_V_SCALED,VINELAND_DOMESTIC_V_SCALED,VINELAND_COMMUNITY_V_SCALED,VINELAND_DAILYLVNG_STANDARD,VINELAND_INTERPERSONAL_V_SCALED,VINELAND_PLAY_V_SCALED,VINELAND_COPING_V_SCALED,VINELAND_SOCIAL_STANDARD,VINELAND_SUM_SCORES,VINELAND_ABC_STANDARD,VINELAND_INFORMANT,WISC_IV_VCI,WISC_IV_PRI,WISC_IV_WMI,WISC_IV_PSI,WISC_IV_SIM_SCALED,WISC_IV_VOCAB_SCALED,WISC_IV_INFO_SCALED,WISC_IV_BLK_DSN_SCALED,WISC_IV_PIC_CON_SCALED,WISC_IV_MATRIX_SCALED,WISC_IV_DIGIT_SPAN_SCALED,WISC_IV_LET_NUM_SCALED,WISC_IV_CODING_SCALED,WISC_IV_SYM_SCALED,EYE_STATUS_AT_SCAN,AGE_AT_MPRAGE,BMI,anat_cnr,anat_efc,anat_fber,anat_fwhm,anat_qi1,anat_snr,func_efc,func_fber,func_fwhm,func_dvars,func_outlier,func_quality,func_mean_fd,func_num_fd,func_perc_fd,func_gsr,qc_rater_1,qc_notes_rater_1,qc_anat_rater_2,qc_anat_notes_rater_2,qc_func_rater_2,qc_func_notes_rater_2,qc_anat_rater_3,qc_anat_notes_rater_3,qc_func_rater_3,qc_func_notes_rater_3,SUB_IN_SMP";

/// A 106-column row: the first 12 columns given, FIQ, func_mean_fd, qc columns and SUB_IN_SMP set.
pub fn abide_row(first12: &str, fiq: &str, fd: &str, qc1: &str, qc2: &str, qc3: &str, smp: &str) -> String {
    let cols: Vec<&str> = HEADER.split(',').collect();
    let mut cells: Vec<String> = vec!["-9999".to_string(); cols.len()];
    for (i, v) in first12.split(',').enumerate() {
        cells[i] = v.to_string();
    }
    let set = |cells: &mut Vec<String>, name: &str, v: &str| {
        let i = cols.iter().position(|c| *c == name).unwrap();
        cells[i] = v.to_string();
    };
    set(&mut cells, "FIQ", fiq);
    set(&mut cells, "func_mean_fd", fd);
    set(&mut cells, "qc_rater_1", qc1);
    set(&mut cells, "qc_func_rater_2", qc2);
    set(&mut cells, "qc_func_rater_3", qc3);
    set(&mut cells, "SUB_IN_SMP", smp);
    set(&mut cells, "qc_notes_rater_1", "\"note, with comma\"");
    cells.join(",")
}

pub fn phenotypic() -> String {
    [
        HEADER.to_string(),
        abide_row("0,1,50002,1,50002,PITT,no_filename,1,1,16.77,1,Ambi", "103", "0.1", "OK", "OK", "OK", "1"),
        abide_row("1,2,50003,2,50003,PITT,Pitt_0050003,1,1,24.45,1,R", "124", "0.0803", "OK", "OK", "fail", "1"),
        abide_row("26,27,50030,27,50030,PITT,Pitt_0050030,2,0,25.12,1,-9999", "-9999", "0.12", "OK", "", "OK", "0"),
        abide_row(
            "400,401,51334,401,51334,MAX_MUN,MaxMun_c_0051334,1,-9999,12.5,2,R",
            "110",
            "0.2",
            "maybe",
            "OK",
            "OK",
            "1",
        ),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn abide_pcp_zip_and_raw() {
    let mut p = MemPool::new();
    let z = "ABIDE_pcp.zip";
    p.add(z, "ABIDE_pcp/Phenotypic_V1_0b_preprocessed1.csv", phenotypic());
    for fid in ["Pitt_0050003", "Pitt_0050030", "MaxMun_c_0051334"] {
        p.touch(z, &format!("ABIDE_pcp/cpac/nofilt_noglobal/{fid}_func_preproc.nii.gz"))
            .touch(z, &format!("ABIDE_pcp/cpac/nofilt_noglobal/{fid}_rois_cc200.1D"));
    }
    p.touch(z, "ABIDE_pcp/cpac/filt_global/Pitt_0050003_func_preproc.nii.gz");
    // The S3 layout: a folder per derivative below the strategy.
    let s3 = "ABIDE_Initiative/Outputs";
    p.touch("s3", &format!("{s3}/ccs/filt_noglobal/func_preproc/Pitt_0050003_func_preproc.nii.gz"))
        .touch("s3", &format!("{s3}/ccs/filt_noglobal/rois_cc200/Pitt_0050003_rois_cc200.1D"))
        .touch("s3", &format!("{s3}/dparsf/nofilt_global/reho/MaxMun_c_0051334_reho.nii.gz"));
    p.touch("RawData.tar", "RawData/NYU/0050952/session_1/anat_1/mprage.nii.gz")
        .touch("RawData.tar", "RawData/NYU/0050952/session_1/rest_1/rest.nii.gz")
        .touch("RawData.tar", "RawData/MaxMun_c/0051334/session_1/anat_1/mprage.nii.gz");
    let ds = p.organize_with("abide").expect("recognized");
    check_invariants(&ds, &p.organize_with("abide").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    for f in [
        "0050003/session_1/cpac/nofilt_noglobal/Pitt_0050003_func_preproc.nii.gz",
        "0050003/session_1/cpac/filt_global/Pitt_0050003_func_preproc.nii.gz",
        "0051334/session_1/cpac/nofilt_noglobal/MaxMun_c_0051334_rois_cc200.1D",
        "0051334/session_1/anat_1/mprage.nii.gz",
        "0050952/session_1/rest_1/rest.nii.gz",
        "0050003/session_1/ccs/filt_noglobal/Pitt_0050003_func_preproc.nii.gz",
        "0050003/session_1/ccs/filt_noglobal/Pitt_0050003_rois_cc200.1D",
        "0051334/session_1/dparsf/nofilt_global/MaxMun_c_0051334_reho.nii.gz",
    ] {
        assert!(t.contains(&f.to_string()), "{f}");
    }
    assert!(!t.iter().any(|x| x.starts_with("0050002")));
    assert_eq!(
        json(&ds, "0050003/session_1/labels.json"),
        json!({"DX_GROUP": 1, "diagnosis": "autism", "DSM_IV_TR": 1})
    );
    assert_eq!(
        json(&ds, "0050030/session_1/labels.json"),
        json!({"DX_GROUP": 2, "diagnosis": "control", "DSM_IV_TR": 0})
    );
    assert_eq!(
        json(&ds, "0051334/session_1/labels.json"),
        json!({"DX_GROUP": 1, "diagnosis": "autism", "DSM_IV_TR": null})
    );
    // Raw subject without a phenotypic row.
    assert_eq!(
        json(&ds, "0050952/session_1/labels.json"),
        json!({"DX_GROUP": null, "diagnosis": null, "DSM_IV_TR": null})
    );
    let mut m = json(&ds, "0050030/session_1/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"SITE_ID": "PITT", "FILE_ID": "Pitt_0050030", "AGE_AT_SCAN": 25.12, "SEX": 1, "HANDEDNESS_CATEGORY": null,
        "FIQ": null, "func_mean_fd": 0.12, "qc_rater_1": "OK", "qc_func_rater_2": null, "qc_func_rater_3": "OK", "SUB_IN_SMP": 0, "split": null})
    );
    assert_eq!(json(&ds, "0051334/session_1/metadata.json")["SITE_ID"], json!("MAX_MUN"));
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 4, "studies": 4, "files": 13}));
}

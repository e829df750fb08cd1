//! Golden test of `mounts/lidc-idri.toml`: the same patients in the NBIA 4.x, NBIA 3.x and classic
//! layouts give the same tree (grouped by DICOM tags) except for basenames; XML reading sessions
//! go with their folder's series and become nodule labels; a CR study with an IdriReadMessage.

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::{Value, json};

const ROOT: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001";

/// (patient, study suffix, series suffix, SeriesNumber, modality, images, study folder digits, series folder digits)
const SERIES: [(&str, &str, &str, i64, &str, usize); 4] = [
    ("LIDC-IDRI-0001", "298806137288633453246975630178", "179049373636438705059720603192", 3000566, "CT", 12),
    ("LIDC-IDRI-0001", "298806137288633453246975630178", "141365756818074696859567662357", 3000923, "CT", 9),
    ("LIDC-IDRI-0001", "175012972118199124641098335511", "141365756818074696859567630033", 1, "CR", 1),
    ("LIDC-IDRI-0002", "490157381160200744295382098329", "619372068417051974713149104919", 3000522, "CT", 3),
];

fn info(i: usize, k: usize) -> DicomInfo {
    let (pid, st, se, num, modality, _) = SERIES[i];
    DicomInfo {
        patient_id: Some(pid.into()),
        study_uid: Some(format!("{ROOT}.{st}")),
        series_uid: Some(format!("{ROOT}.{se}")),
        sop_uid: Some(format!("{ROOT}.{se}.{k}")),
        series_number: Some(num),
        instance_number: Some(k as i64 + 1),
        modality: Some(modality.into()),
        study_date: Some("20000101".into()),
        manufacturer: Some("GE MEDICAL SYSTEMS".into()),
        series_description: if modality == "CR" { Some("Chest PA".into()) } else { None },
        rows: Some(512),
        columns: Some(512),
        ..Default::default()
    }
}

pub const XML_CT1: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage uid="1.3.6.1.4.1.14519.5.2.1.6279.6001.1308168927827.0" xmlns="http://www.nih.gov" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<ResponseHeader>
  <Version>1.8.1</Version>
  <TaskDescription>Second unblinded read</TaskDescription>
  <SeriesInstanceUid>1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192</SeriesInstanceUid>
  <ResponseDescription>1 - Reading complete</ResponseDescription>
</ResponseHeader>
<readingSession>
  <annotationVersion>3.12</annotationVersion>
  <servicingRadiologistID>anonymous</servicingRadiologistID>
  <unblindedReadNodule>
    <noduleID>Nodule 001</noduleID>
    <characteristics><subtlety>5</subtlety><internalStructure>1</internalStructure><calcification>6</calcification><sphericity>3</sphericity><margin>3</margin><lobulation>3</lobulation><spiculation>4</spiculation><texture>5</texture><malignancy>5</malignancy></characteristics>
    <roi><imageZposition>-125.000000 </imageZposition><imageSOP_UID>1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192.3</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>312</xCoord><yCoord>355</yCoord></edgeMap><edgeMap><xCoord>311</xCoord><yCoord>356</yCoord></edgeMap></roi>
    <roi><imageZposition>-127.500000 </imageZposition><imageSOP_UID>x.4</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>312</xCoord><yCoord>355</yCoord></edgeMap></roi>
  </unblindedReadNodule>
  <unblindedReadNodule>
    <noduleID>IL057_127364</noduleID>
    <roi><imageZposition>-200.0</imageZposition><imageSOP_UID>x.9</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>100</xCoord><yCoord>101</yCoord></edgeMap></roi>
  </unblindedReadNodule>
  <nonNodule><nonNoduleID>Non-nodule 001</nonNoduleID><imageZposition>-150.0</imageZposition><imageSOP_UID>x.6</imageSOP_UID><locus><xCoord>50</xCoord><yCoord>60</yCoord></locus></nonNodule>
</readingSession>
<readingSession>
  <annotationVersion>3.12</annotationVersion>
  <servicingRadiologistID>anonymous</servicingRadiologistID>
  <unblindedReadNodule>
    <noduleID>0</noduleID>
    <characteristics><subtlety>4</subtlety><malignancy>3</malignancy></characteristics>
    <roi><imageZposition>-125.0</imageZposition><imageSOP_UID>x.3</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>1</xCoord><yCoord>2</yCoord></edgeMap></roi>
    <roi><imageZposition>-127.5</imageZposition><imageSOP_UID>x.4</imageSOP_UID><inclusion>FALSE</inclusion><edgeMap><xCoord>1</xCoord><yCoord>2</yCoord></edgeMap></roi>
    <roi><imageZposition>-130.0</imageZposition><imageSOP_UID>x.5</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>1</xCoord><yCoord>2</yCoord></edgeMap></roi>
  </unblindedReadNodule>
</readingSession>
<readingSession>
  <annotationVersion>3.12</annotationVersion>
  <servicingRadiologistID>anonymous</servicingRadiologistID>
  <nonNodule><nonNoduleID>Non-nodule 002</nonNoduleID><imageZposition>-10.0</imageZposition><imageSOP_UID>x.1</imageSOP_UID><locus><xCoord>5</xCoord><yCoord>6</yCoord></locus></nonNodule>
</readingSession>
</LidcReadMessage>
"#;

pub const XML_CR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<IdriReadMessage xmlns="http://www.nih.gov/idri"><ResponseHeader><SeriesInstanceUid>1.3.6.1.4.1.14519.5.2.1.6279.6001.141365756818074696859567630033</SeriesInstanceUid></ResponseHeader>
<CXRreadingSession><unblindedRead><noduleID>x</noduleID></unblindedRead></CXRreadingSession></IdriReadMessage>
"#;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Layout {
    Nbia,
    Nbia3,
    Classic,
}

/// (archive, series folder path, file name of image k of n)
fn series_dir(l: Layout, i: usize) -> (String, String) {
    let (pid, st, se, num, modality, _) = SERIES[i];
    let st5 = &st[st.len() - 5..];
    let se5 = &se[se.len() - 5..];
    let desc = if modality == "CR" { "Chest PA" } else { "NA" };
    match l {
        Layout::Nbia => (
            "manifest-1600709154662.zip".into(),
            format!("manifest-1600709154662/LIDC-IDRI/{pid}/01-01-2000-NA-NA-{st5}/{num}.000000-{desc}-{se5}"),
        ),
        Layout::Nbia3 => ("LIDC-IDRI.zip".into(), format!("LIDC-IDRI/{pid}/01-01-2000-{st5}/{num}-{se5}")),
        Layout::Classic => ("LIDC-IDRI.zip".into(), format!("LIDC-IDRI/{pid}/{ROOT}.{st}/{ROOT}.{se}")),
    }
}

fn file_name(l: Layout, k: usize, n: usize) -> String {
    match l {
        Layout::Nbia => {
            let w = n.to_string().len().max(if n >= 10 { 2 } else { 1 });
            format!("1-{:0w$}.dcm", k + 1)
        }
        _ => format!("{:06}.dcm", k + 1),
    }
}

fn lidc_pool(l: Layout) -> MemPool {
    let mut p = MemPool::new();
    for (i, series) in SERIES.iter().enumerate() {
        let (a, dir) = series_dir(l, i);
        let n = series.5;
        for k in 0..n {
            p.add_dicom(&a, &format!("{dir}/{}", file_name(l, k, n)), info(i, k));
        }
        match i {
            0 => {
                p.add(&a, &format!("{dir}/069.xml"), XML_CT1);
            }
            2 => {
                p.add(&a, &format!("{dir}/158.xml"), XML_CR);
            }
            _ => {}
        }
    }
    if l == Layout::Nbia {
        // No rows for these series: the same metadata as the other layouts.
        p.add("manifest-1600709154662.zip", "manifest-1600709154662/metadata.csv", format!("{NBIA_CSV_HEADER}\n"));
    }
    p
}

const NBIA_CSV_HEADER: &str = "Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,Study UID,Study Description,Study Date,Series Description,Manufacturer,Modality,SOP Class Name,SOP Class UID,Number of Images,File Size,File Location,Download Timestamp";

fn strip_names(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("source");
        o.remove("source_layout");
        if let Some(Value::Array(series)) = o.get_mut("series") {
            for s in series {
                s.as_object_mut().unwrap().remove("source_folder");
            }
        }
    }
    v
}

#[test]
fn lidc_three_layouts_same_tree() {
    let s1 = format!("{ROOT}.{}", SERIES[0].1);
    let se1 = format!("{ROOT}.{}", SERIES[0].2);
    let se2 = format!("{ROOT}.{}", SERIES[1].2);
    let mut first: Option<(Vec<String>, Value, Value)> = None;
    for l in [Layout::Nbia, Layout::Nbia3, Layout::Classic] {
        let p = lidc_pool(l);
        let ds = p.organize_with("lidc-idri").expect("recognized");
        check_invariants(&ds, &p.organize_with("lidc-idri").unwrap());
        assert!(ds.warnings.is_empty(), "{l:?}: {:?}", ds.warnings);
        assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 3, "files": 27}), "{l:?}");
        let t = tree(&ds);
        assert!(t.contains(&format!("LIDC-IDRI-0001/{s1}/{se1}/069.xml")), "{l:?} {t:#?}");
        // labels.csv: one row per series folder, the reading XMLs a column of paths.
        let csv = labels_csv(&ds);
        assert!(csv.lines().next().unwrap().ends_with(",xml"), "{l:?} {csv}");
        let rows: Vec<&str> = csv.lines().skip(1).filter(|r| r.starts_with(&format!("LIDC-IDRI-0001/{s1}/"))).collect();
        assert_eq!(rows.len(), 2, "{l:?} {csv}");
        assert!(rows[0].starts_with(&format!("LIDC-IDRI-0001/{s1}/{se2},")), "{l:?} {csv}");
        assert!(rows[1].starts_with(&format!("LIDC-IDRI-0001/{s1}/{se1},")), "{l:?} {csv}");
        assert!(rows[1].ends_with(&format!(",LIDC-IDRI-0001/{s1}/{se1}/069.xml")), "{l:?} {csv}");
        let labels = json(&ds, &format!("LIDC-IDRI-0001/{s1}/labels.json"));
        assert_eq!(
            labels,
            json!({"annotation_files": [format!("{se1}/069.xml")], "reading_sessions": 3,
                "nodules": [
                    {"series": se1, "reader": 1, "nodule_id": "Nodule 001", "malignancy": 5, "rois": 2},
                    {"series": se1, "reader": 1, "nodule_id": "IL057_127364", "malignancy": null, "rois": 1},
                    {"series": se1, "reader": 2, "nodule_id": "0", "malignancy": 3, "rois": 3}],
                "non_nodules": [
                    {"series": se1, "reader": 1, "non_nodule_id": "Non-nodule 001"},
                    {"series": se1, "reader": 3, "non_nodule_id": "Non-nodule 002"}]}),
            "{l:?}"
        );
        let meta = json(&ds, &format!("LIDC-IDRI-0001/{s1}/metadata.json"));
        let layout = match l {
            Layout::Nbia => "nbia",
            Layout::Nbia3 => "nbia3",
            Layout::Classic => "classic",
        };
        assert_eq!(meta["source_layout"], json!(layout));
        // Series in SeriesInstanceUID order: series 1 (…1413…) before series 0 (…1790…).
        assert_eq!(meta["series"][1]["source_folder"], json!(series_dir(l, 0).1));
        assert_eq!(
            strip_names(&meta),
            json!({"collection": "LIDC-IDRI", "StudyInstanceUID": s1, "StudyDate": "20000101", "StudyDescription": null, "split": null,
                "series": [
                  {"SeriesInstanceUID": se2, "SeriesNumber": 3000923, "SeriesDescription": null, "Modality": "CT", "Manufacturer": "GE MEDICAL SYSTEMS", "number_of_images": 9},
                  {"SeriesInstanceUID": se1, "SeriesNumber": 3000566, "SeriesDescription": null, "Modality": "CT", "Manufacturer": "GE MEDICAL SYSTEMS", "number_of_images": 12}]})
        );
        // The CR study: IdriReadMessage listed, not counted.
        let cr = format!("{ROOT}.{}", SERIES[2].1);
        let crse = format!("{ROOT}.{}", SERIES[2].2);
        assert_eq!(
            json(&ds, &format!("LIDC-IDRI-0001/{cr}/labels.json")),
            json!({"annotation_files": [format!("{crse}/158.xml")], "reading_sessions": 0, "nodules": [], "non_nodules": []})
        );
        let p2 = format!("LIDC-IDRI-0002/{ROOT}.{}/labels.json", SERIES[3].1);
        assert_eq!(
            json(&ds, &p2),
            json!({"annotation_files": [], "reading_sessions": 0, "nodules": [], "non_nodules": []})
        );
        // Same tree, apart from basenames.
        let shape: Vec<String> = t
            .iter()
            .map(|x| match x.rsplit_once('/') {
                Some((d, f)) if f.ends_with(".dcm") => format!("{d}/*.dcm"),
                _ => x.clone(),
            })
            .collect();
        let m = strip_names(&meta);
        match &first {
            None => first = Some((shape, labels, m)),
            Some((s, lb, mt)) => {
                let mut a = shape.clone();
                a.sort();
                a.dedup();
                let mut b = s.clone();
                b.sort();
                b.dedup();
                assert_eq!(a, b, "{l:?}");
                assert_eq!(&labels, lb);
                assert_eq!(&m, mt);
            }
        }
    }
}

#[test]
fn lidc_needs_headers() {
    // The same paths without DICOM headers (not scanned, or not DICOM) place nothing.
    let mut p = MemPool::new();
    p.touch("LIDC-IDRI.zip", "LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-30178/3000566-03192/000001.dcm").add(
        "LIDC-IDRI.zip",
        "LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-30178/3000566-03192/069.xml",
        XML_CT1,
    );
    assert!(p.organize_with("lidc-idri").is_none());
}

/// The XML-only download (`LIDC-XML-only.tar.gz`) beside an image download without XMLs: each
/// XML joins the series its `SeriesInstanceUid` names, not the patient its file number suggests.
#[test]
fn lidc_xml_only_download_joins_series_by_uid() {
    let mut p = MemPool::new();
    for (i, series) in SERIES.iter().enumerate() {
        let (a, dir) = series_dir(Layout::Classic, i);
        let n = series.5;
        for k in 0..n {
            p.add_dicom(&a, &format!("{dir}/{}", file_name(Layout::Classic, k, n)), info(i, k));
        }
    }
    let xml_info = |series: &str| DicomInfo::series_reference(format!("{ROOT}.{series}"));
    p.add("LIDC-XML-only.tar.gz", "LIDC-XML-only/tcia-lidc-xml/185/069.xml", XML_CT1);
    p.files.last_mut().unwrap().dicom = Some(std::sync::Arc::new(xml_info(SERIES[0].2)));
    p.add("LIDC-XML-only.tar.gz", "LIDC-XML-only/tcia-lidc-xml/157/158.xml", XML_CR);
    p.files.last_mut().unwrap().dicom = Some(std::sync::Arc::new(xml_info(SERIES[2].2)));
    // An XML about a series nobody downloaded is left in the raw view only.
    p.add("LIDC-XML-only.tar.gz", "LIDC-XML-only/tcia-lidc-xml/185/070.xml", XML_CT1);
    p.files.last_mut().unwrap().dicom = Some(std::sync::Arc::new(xml_info("999")));

    let ds = p.organize_with("lidc-idri").expect("recognized");
    check_invariants(&ds, &p.organize_with("lidc-idri").unwrap());
    let (s1, se1) = (format!("{ROOT}.{}", SERIES[0].1), format!("{ROOT}.{}", SERIES[0].2));
    let t = tree(&ds);
    assert!(t.contains(&format!("LIDC-IDRI-0001/{s1}/{se1}/069.xml")), "{t:#?}");
    assert!(!t.iter().any(|f| f.ends_with("070.xml")), "{t:#?}");
    let labels = json(&ds, &format!("LIDC-IDRI-0001/{s1}/labels.json"));
    assert_eq!(labels["reading_sessions"], json!(3));
    assert_eq!(labels["nodules"].as_array().unwrap().len(), 3);
    let (cr, crse) = (format!("{ROOT}.{}", SERIES[2].1), format!("{ROOT}.{}", SERIES[2].2));
    assert_eq!(
        json(&ds, &format!("LIDC-IDRI-0001/{cr}/labels.json"))["annotation_files"],
        json!([format!("{crse}/158.xml")])
    );
}

/// NBIA 4.x with rows in metadata.csv (zipped, then loose): joined by Series UID / Study UID.
#[test]
fn lidc_metadata_csv() {
    let s1 = format!("{ROOT}.{}", SERIES[0].1);
    let se1 = format!("{ROOT}.{}", SERIES[0].2);
    let se2 = format!("{ROOT}.{}", SERIES[1].2);
    let s4 = format!("{ROOT}.{}", SERIES[3].1);
    let se4 = format!("{ROOT}.{}", SERIES[3].2);
    // Series 0: the CSV has a SeriesDescription (the DICOM lacks it), a StudyDescription and 10
    // images (12 files). Series 1: no row (file count, nulls). Series 3: its DICOM lacks
    // StudyDate and Manufacturer, its row has them (MM-DD-YYYY) and `NA` descriptions.
    let csv = format!(
        "{NBIA_CSV_HEADER}\n\
         {se1},LIDC-IDRI,null,httpsdoi.org10.7937K9TCIA.2015.LO9QL9SX,LIDC-IDRI-0001,{s1},CHEST CT,01-01-2000,Recon 2: LUNG,GE MEDICAL SYSTEMS,CT,CT Image Storage,1.2.840.10008.5.1.4.1.1.2,10,5.00 MB,./LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-NA-NA-30178/3000566.000000-NA-03192,2021-09-30T21:39:09.755\n\
         {se4},LIDC-IDRI,null,httpsdoi.org10.7937K9TCIA.2015.LO9QL9SX,LIDC-IDRI-0002,{s4},NA,02-29-2000,null,Philips,CT,CT Image Storage,1.2.840.10008.5.1.4.1.1.2,NA,1.00 MB,./LIDC-IDRI/LIDC-IDRI-0002/x,2021-09-30T21:39:10.000\n"
    );
    for loose in [false, true] {
        let l = Layout::Nbia;
        let mut p = MemPool::new();
        for (i, series) in SERIES.iter().enumerate() {
            let (a, dir) = series_dir(l, i);
            let n = series.5;
            for k in 0..n {
                let mut d = info(i, k);
                if i == 3 {
                    d.study_date = None;
                    d.manufacturer = None;
                }
                p.add_dicom(&a, &format!("{dir}/{}", file_name(l, k, n)), d);
            }
        }
        if loose {
            p.add("downloads", "manifest-1600709154662/metadata.csv", csv.clone());
        } else {
            p.add("manifest-1600709154662.zip", "manifest-1600709154662/metadata.csv", csv.clone());
        }
        let ds = p.organize_with("lidc-idri").expect("recognized");
        assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
        let meta = strip_names(&json(&ds, &format!("LIDC-IDRI-0001/{s1}/metadata.json")));
        assert_eq!(
            meta,
            json!({"collection": "LIDC-IDRI", "StudyInstanceUID": s1, "StudyDate": "20000101", "StudyDescription": "CHEST CT", "split": null,
                "series": [
                  {"SeriesInstanceUID": se2, "SeriesNumber": 3000923, "SeriesDescription": null, "Modality": "CT", "Manufacturer": "GE MEDICAL SYSTEMS", "number_of_images": 9},
                  {"SeriesInstanceUID": se1, "SeriesNumber": 3000566, "SeriesDescription": "Recon 2: LUNG", "Modality": "CT", "Manufacturer": "GE MEDICAL SYSTEMS", "number_of_images": 10}]}),
            "loose={loose}"
        );
        let meta = strip_names(&json(&ds, &format!("LIDC-IDRI-0002/{s4}/metadata.json")));
        assert_eq!(
            meta,
            json!({"collection": "LIDC-IDRI", "StudyInstanceUID": s4, "StudyDate": "20000229", "StudyDescription": null, "split": null,
                "series": [
                  {"SeriesInstanceUID": se4, "SeriesNumber": 3000522, "SeriesDescription": null, "Modality": "CT", "Manufacturer": "Philips", "number_of_images": 3}]}),
            "loose={loose}"
        );
        // The CSV is a table, not a study file.
        assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 3, "files": 25}));
    }
}

/// A reading-session file that is not well-formed XML (here cut short) is left out with a
/// warning naming it and the parser's error; the series' other files still count.
#[test]
fn lidc_broken_xml_is_named_in_a_warning() {
    let mut p = lidc_pool(Layout::Classic);
    let (a, dir) = series_dir(Layout::Classic, 0);
    let cut = &XML_CT1[..XML_CT1.find("</readingSession>").unwrap()];
    p.add(&a, &format!("{dir}/070.xml"), cut);
    let ds = p.organize_with("lidc-idri").expect("recognized");
    let s1 = format!("{ROOT}.{}", SERIES[0].1);
    let labels = json(&ds, &format!("LIDC-IDRI-0001/{s1}/labels.json"));
    assert_eq!(labels["reading_sessions"], json!(3), "069.xml alone");
    assert_eq!(labels["annotation_files"].as_array().unwrap().len(), 2, "{labels}");
    assert_eq!(ds.warnings.len(), 3, "one per LIDC field: {:?}", ds.warnings);
    for w in &ds.warnings {
        assert!(w.contains("are not well-formed XML") && w.contains(&format!("{dir}/070.xml (")), "{w}");
    }
}

/// Derived files (`derive = ["nifti"]`): a `.nii` and `.json` in each CT series folder whose
/// slices make a volume, sized 352 + 512 x 512 x slices x 2; nothing for the one-image CR study
/// nor for a series without geometry; listed in labels.csv and metadata.json.
#[test]
fn lidc_derived_nifti() {
    let mut p = MemPool::new();
    for (i, series) in SERIES.iter().enumerate() {
        let (a, dir) = series_dir(Layout::Classic, i);
        for k in 0..series.5 {
            let mut d = info(i, k);
            // The first CT series has its geometry; the second none (no volume, no .nii).
            if i == 0 {
                d.image_position = Some([-166.0, -171.7, -10.0 - 2.5 * k as f64]);
                d.image_orientation = Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
                d.pixel_spacing = Some([0.703125, 0.703125]);
                d.bits_allocated = Some(16);
                d.pixel_representation = Some(1);
            }
            p.add_dicom(&a, &format!("{dir}/{}", file_name(Layout::Classic, k, series.5)), d);
        }
    }
    let ds = p.organize_derived("lidc-idri").expect("recognized");
    let (st, se) = (format!("{ROOT}.{}", SERIES[0].1), format!("{ROOT}.{}", SERIES[0].2));
    let got: Vec<(&str, u64, &str)> = ds
        .derived
        .iter()
        .map(|d| (d.rel_path.as_str(), d.size, medfs::derive::by_id(d.spec.kind).unwrap().name()))
        .collect();
    let nii = format!("LIDC-IDRI-0001/{st}/{se}/{se}.nii");
    let json_name = format!("LIDC-IDRI-0001/{st}/{se}/{se}.json");
    // The volume, its sidecar, and the study's preview (its middle slice, 512 -> 256 px, 8-bit).
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].0, got[0].1, got[0].2), (json_name.as_str(), got[0].1, "nifti"));
    assert_eq!((got[1].0, got[1].1, got[1].2), (nii.as_str(), 352 + 512 * 512 * 12 * 2, "nifti"));
    let preview = format!("LIDC-IDRI-0001/{st}/preview.png");
    assert_eq!((got[2].0, got[2].2), (preview.as_str(), "preview"));
    assert_eq!(ds.derived[2].spec.inputs, ds.derived[1].spec.inputs, "made from the volume's slices");
    // Slices bottom-up: the last file (k = 11, z = -37.5) first.
    let nii_spec = &ds.derived[1].spec;
    assert_eq!(nii_spec.inputs.len(), 12);
    let (a, dir) = series_dir(Layout::Classic, 0);
    assert_eq!(nii_spec.inputs[0], p.id(&a, &format!("{dir}/{}", file_name(Layout::Classic, 11, 12))));
    let csv =
        String::from_utf8(ds.generated.iter().find(|g| g.rel_path == "labels.csv").unwrap().bytes.clone()).unwrap();
    assert!(csv.lines().any(|l| l.starts_with(&format!("{nii},LIDC-IDRI-0001,{st},"))), "{csv}");
    let meta = json(&ds, &format!("LIDC-IDRI-0001/{st}/metadata.json"));
    assert_eq!(meta["derived"][format!("{se}/{se}.nii")]["kind"], "nifti", "{meta}");
}

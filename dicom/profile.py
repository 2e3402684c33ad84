"""PS3.15 Annex E Table E.1-1: Basic Application Level Confidentiality Profile actions.

One entry per attribute: tag -> action code of the Basic Profile column
(D, Z, X, K, C, U, and the combined codes X/Z, X/D, Z/D, X/Z/D, X/Z/U*).
Repeating groups (50xx, 60xx) are listed by their group-masked tag in REPEATING_GROUPS.

Action codes (PS3.15 E.1.1): D = replace with a non-zero-length dummy value,
Z = replace with a zero-length (or dummy) value, X = remove, K = keep,
C = clean, U = replace with a consistent non-identifying UID. Combined codes
mean "the first, unless the next is needed for IOD conformance".

Keys are ints 0xGGGGEEEE, sorted ascending. Retired attributes are included.
Private attributes (odd group) are not listed; they are handled in code.
"""

BASIC_PROFILE: dict[int, str] = {
    0x00001000: "X",  # Affected SOP Instance UID
    0x00001001: "U",  # Requested SOP Instance UID
    0x00020003: "U",  # Media Storage SOP Instance UID
    0x00041511: "U",  # Referenced SOP Instance UID in File
    0x00080012: "X/D",  # Instance Creation Date
    0x00080013: "X/Z/D",  # Instance Creation Time
    0x00080014: "U",  # Instance Creator UID
    0x00080015: "X",  # Instance Coercion DateTime
    0x00080017: "U",  # Acquisition UID
    0x00080018: "U",  # SOP Instance UID
    0x00080019: "U",  # Pyramid UID
    0x00080020: "Z",  # Study Date
    0x00080021: "X/D",  # Series Date
    0x00080022: "X/Z",  # Acquisition Date
    0x00080023: "Z/D",  # Content Date
    0x00080024: "X",  # Overlay Date
    0x00080025: "X",  # Curve Date
    0x0008002A: "X/Z/D",  # Acquisition DateTime
    0x00080030: "Z",  # Study Time
    0x00080031: "X/D",  # Series Time
    0x00080032: "X/Z",  # Acquisition Time
    0x00080033: "Z/D",  # Content Time
    0x00080034: "X",  # Overlay Time
    0x00080035: "X",  # Curve Time
    0x00080050: "Z",  # Accession Number
    0x00080054: "X",  # Retrieve AE Title
    0x00080055: "X",  # Station AE Title
    0x00080058: "U",  # Failed SOP Instance UID List
    0x00080080: "X/Z/D",  # Institution Name
    0x00080081: "X",  # Institution Address
    0x00080082: "X/Z/D",  # Institution Code Sequence
    0x00080090: "Z",  # Referring Physician's Name
    0x00080092: "X",  # Referring Physician's Address
    0x00080094: "X",  # Referring Physician's Telephone Numbers
    0x00080096: "X",  # Referring Physician Identification Sequence
    0x0008009C: "Z",  # Consulting Physician's Name
    0x0008009D: "X",  # Consulting Physician Identification Sequence
    0x00080106: "D",  # Context Group Version
    0x00080107: "D",  # Context Group Local Version
    0x00080201: "X",  # Timezone Offset From UTC
    0x00081000: "X",  # Network ID
    0x00081010: "X/Z/D",  # Station Name
    0x00081030: "X",  # Study Description
    0x0008103E: "X",  # Series Description
    0x00081040: "X",  # Institutional Department Name
    0x00081041: "X",  # Institutional Department Type Code Sequence
    0x00081048: "X",  # Physician(s) of Record
    0x00081049: "X",  # Physician(s) of Record Identification Sequence
    0x00081050: "X",  # Performing Physician's Name
    0x00081052: "X",  # Performing Physician Identification Sequence
    0x00081060: "X",  # Name of Physician(s) Reading Study
    0x00081062: "X",  # Physician(s) Reading Study Identification Sequence
    0x00081070: "X/Z/D",  # Operators' Name
    0x00081072: "X/D",  # Operator Identification Sequence
    0x00081080: "X",  # Admitting Diagnoses Description
    0x00081084: "X",  # Admitting Diagnoses Code Sequence
    0x00081088: "X",  # Pyramid Description
    0x00081110: "X/Z",  # Referenced Study Sequence
    0x00081111: "X/Z/D",  # Referenced Performed Procedure Step Sequence
    0x00081120: "X",  # Referenced Patient Sequence
    0x00081140: "X/Z/U*",  # Referenced Image Sequence
    0x00081155: "U",  # Referenced SOP Instance UID
    0x00081195: "U",  # Transaction UID
    0x00081301: "X",  # Principal Diagnosis Code Sequence
    0x00081302: "X",  # Primary Diagnosis Code Sequence
    0x00081303: "X",  # Secondary Diagnoses Code Sequence
    0x00081304: "X",  # Histological Diagnoses Code Sequence
    0x00082111: "X",  # Derivation Description
    0x00082112: "X/Z/U*",  # Source Image Sequence
    0x00083010: "U",  # Irradiation Event UID
    0x00084000: "X",  # Identifying Comments
    0x00100010: "Z",  # Patient's Name
    0x00100011: "X",  # Person Names to Use Sequence
    0x00100012: "X",  # Name to Use
    0x00100013: "X",  # Name to Use Comment
    0x00100014: "X",  # Third Person Pronouns Sequence
    0x00100015: "X",  # Pronoun Code Sequence
    0x00100016: "X",  # Pronoun Comment
    0x00100020: "Z/D",  # Patient ID
    0x00100021: "X",  # Issuer of Patient ID
    0x00100030: "Z",  # Patient's Birth Date
    0x00100032: "X",  # Patient's Birth Time
    0x00100040: "Z",  # Patient's Sex
    0x00100041: "X",  # Gender Identity Sequence
    0x00100042: "X",  # Sex Parameters for Clinical Use Category Comment
    0x00100043: "X",  # Sex Parameters for Clinical Use Category Sequence
    0x00100044: "X",  # Gender Identity Code Sequence
    0x00100045: "X",  # Gender Identity Comment
    0x00100046: "X",  # Sex Parameters for Clinical Use Category Code Sequence
    0x00100047: "X",  # Sex Parameters for Clinical Use Category Reference
    0x00100050: "X",  # Patient's Insurance Plan Code Sequence
    0x00100101: "X",  # Patient's Primary Language Code Sequence
    0x00100102: "X",  # Patient's Primary Language Modifier Code Sequence
    0x00101000: "X",  # Other Patient IDs
    0x00101001: "X",  # Other Patient Names
    0x00101002: "X",  # Other Patient IDs Sequence
    0x00101005: "X",  # Patient's Birth Name
    0x00101010: "X",  # Patient's Age
    0x00101020: "X",  # Patient's Size
    0x00101030: "X",  # Patient's Weight
    0x00101040: "X",  # Patient's Address
    0x00101050: "X",  # Insurance Plan Identification
    0x00101060: "X",  # Patient's Mother's Birth Name
    0x00101080: "X",  # Military Rank
    0x00101081: "X",  # Branch of Service
    0x00101090: "X",  # Medical Record Locator
    0x00101100: "X",  # Referenced Patient Photo Sequence
    0x00102000: "X",  # Medical Alerts
    0x00102110: "X",  # Allergies
    0x00102150: "X",  # Country of Residence
    0x00102152: "X",  # Region of Residence
    0x00102154: "X",  # Patient's Telephone Numbers
    0x00102155: "X",  # Patient's Telecom Information
    0x00102160: "X",  # Ethnic Group
    0x00102161: "X",  # Ethnic Group Code Sequence
    0x00102162: "X",  # Ethnic Groups
    0x00102180: "X",  # Occupation
    0x001021A0: "X",  # Smoking Status
    0x001021B0: "X",  # Additional Patient History
    0x001021C0: "X",  # Pregnancy Status
    0x001021D0: "X",  # Last Menstrual Date
    0x001021F0: "X",  # Patient's Religious Preference
    0x00102203: "X/Z",  # Patient's Sex Neutered
    0x00102297: "X",  # Responsible Person
    0x00102299: "X",  # Responsible Organization
    0x00104000: "X",  # Patient Comments
    0x00120010: "D",  # Clinical Trial Sponsor Name
    0x00120020: "D",  # Clinical Trial Protocol ID
    0x00120021: "Z",  # Clinical Trial Protocol Name
    0x00120022: "X",  # Issuer of Clinical Trial Protocol ID
    0x00120023: "X",  # Other Clinical Trial Protocol IDs Sequence
    0x00120030: "Z",  # Clinical Trial Site ID
    0x00120031: "Z",  # Clinical Trial Site Name
    0x00120032: "X",  # Issuer of Clinical Trial Site ID
    0x00120040: "D",  # Clinical Trial Subject ID
    0x00120041: "X",  # Issuer of Clinical Trial Subject ID
    0x00120042: "D",  # Clinical Trial Subject Reading ID
    0x00120043: "X",  # Issuer of Clinical Trial Subject Reading ID
    0x00120050: "Z",  # Clinical Trial Time Point ID
    0x00120051: "X",  # Clinical Trial Time Point Description
    0x00120055: "X",  # Issuer of Clinical Trial Time Point ID
    0x00120060: "Z",  # Clinical Trial Coordinating Center Name
    0x00120071: "X",  # Clinical Trial Series ID
    0x00120072: "X",  # Clinical Trial Series Description
    0x00120073: "X",  # Issuer of Clinical Trial Series ID
    0x00120081: "D",  # Clinical Trial Protocol Ethics Committee Name
    0x00120082: "X",  # Clinical Trial Protocol Ethics Committee Approval Number
    0x00120086: "X",  # Ethics Committee Approval Effectiveness Start Date
    0x00120087: "X",  # Ethics Committee Approval Effectiveness End Date
    0x0014407C: "X",  # Calibration Time
    0x0014407E: "X",  # Calibration Date
    0x0016002B: "X",  # Maker Note
    0x0016004B: "X",  # Device Setting Description
    0x0016004D: "X",  # Camera Owner Name
    0x0016004E: "X",  # Lens Specification
    0x0016004F: "X",  # Lens Make
    0x00160050: "X",  # Lens Model
    0x00160051: "X",  # Lens Serial Number
    0x00160070: "X",  # GPS Version ID
    0x00160071: "X",  # GPS Latitude Ref
    0x00160072: "X",  # GPS Latitude
    0x00160073: "X",  # GPS Longitude Ref
    0x00160074: "X",  # GPS Longitude
    0x00160075: "X",  # GPS Altitude Ref
    0x00160076: "X",  # GPS Altitude
    0x00160077: "X",  # GPS Time Stamp
    0x00160078: "X",  # GPS Satellites
    0x00160079: "X",  # GPS Status
    0x0016007A: "X",  # GPS Measure Mode
    0x0016007B: "X",  # GPS DOP
    0x0016007C: "X",  # GPS Speed Ref
    0x0016007D: "X",  # GPS Speed
    0x0016007E: "X",  # GPS Track Ref
    0x0016007F: "X",  # GPS Track
    0x00160080: "X",  # GPS Img Direction Ref
    0x00160081: "X",  # GPS Img Direction
    0x00160082: "X",  # GPS Map Datum
    0x00160083: "X",  # GPS Dest Latitude Ref
    0x00160084: "X",  # GPS Dest Latitude
    0x00160085: "X",  # GPS Dest Longitude Ref
    0x00160086: "X",  # GPS Dest Longitude
    0x00160087: "X",  # GPS Dest Bearing Ref
    0x00160088: "X",  # GPS Dest Bearing
    0x00160089: "X",  # GPS Dest Distance Ref
    0x0016008A: "X",  # GPS Dest Distance
    0x0016008B: "X",  # GPS Processing Method
    0x0016008C: "X",  # GPS Area Information
    0x0016008D: "X",  # GPS Date Stamp
    0x0016008E: "X",  # GPS Differential
    0x00180010: "Z/D",  # Contrast/Bolus Agent
    0x00180027: "X",  # Intervention Drug Stop Time
    0x00180035: "X",  # Intervention Drug Start Time
    0x00181000: "X/Z/D",  # Device Serial Number
    0x00181002: "U",  # Device UID
    0x00181004: "X",  # Plate ID
    0x00181005: "X",  # Generator ID
    0x00181007: "X",  # Cassette ID
    0x00181008: "X",  # Gantry ID
    0x00181009: "X",  # Unique Device Identifier
    0x0018100A: "X",  # UDI Sequence
    0x0018100B: "U",  # Manufacturer's Device Class UID
    0x00181010: "X",  # Secondary Capture Device ID
    0x00181011: "X",  # Hardcopy Creation Device ID
    0x00181012: "X",  # Date of Secondary Capture
    0x00181014: "X",  # Time of Secondary Capture
    0x00181030: "X/D",  # Protocol Name
    0x00181042: "X",  # Contrast/Bolus Start Time
    0x00181043: "X",  # Contrast/Bolus Stop Time
    0x00181072: "X",  # Radiopharmaceutical Start Time
    0x00181073: "X",  # Radiopharmaceutical Stop Time
    0x00181078: "X",  # Radiopharmaceutical Start DateTime
    0x00181079: "X",  # Radiopharmaceutical Stop DateTime
    0x001811BB: "D",  # Acquisition Field of View Label
    0x00181200: "X",  # Date of Last Calibration
    0x00181201: "X",  # Time of Last Calibration
    0x00181202: "X",  # DateTime of Last Calibration
    0x00181203: "Z",  # Calibration DateTime
    0x00181204: "X",  # Date of Manufacture
    0x00181205: "X",  # Date of Installation
    0x00181400: "X/D",  # Acquisition Device Processing Description
    0x00182042: "U",  # Target UID
    0x00184000: "X",  # Acquisition Comments
    0x00185011: "X",  # Transducer Identification Sequence
    0x0018700A: "X/D",  # Detector ID
    0x0018700C: "X/D",  # Date of Last Detector Calibration
    0x0018700E: "X/D",  # Time of Last Detector Calibration
    0x00189074: "D",  # Frame Acquisition DateTime
    0x00189151: "D",  # Frame Reference DateTime
    0x00189185: "X",  # Respiratory Motion Compensation Technique Description
    0x00189367: "D",  # X-Ray Source ID
    0x00189369: "D",  # Source Start DateTime
    0x0018936A: "D",  # Source End DateTime
    0x00189371: "D",  # X-Ray Detector ID
    0x00189373: "X",  # X-Ray Detector Label
    0x0018937B: "X",  # Multi-energy Acquisition Description
    0x0018937F: "X",  # Decomposition Description
    0x00189424: "X",  # Acquisition Protocol Description
    0x00189516: "X/D",  # Start Acquisition DateTime
    0x00189517: "X/D",  # End Acquisition DateTime
    0x00189623: "D",  # Functional Sync Pulse
    0x00189701: "D",  # Decay Correction DateTime
    0x00189804: "D",  # Exclusion Start DateTime
    0x00189919: "Z/D",  # Instruction Performed DateTime
    0x00189937: "X",  # Requested Series Description
    0x0018A002: "X",  # Contribution DateTime
    0x0018A003: "X",  # Contribution Description
    0x0020000D: "U",  # Study Instance UID
    0x0020000E: "U",  # Series Instance UID
    0x00200010: "Z",  # Study ID
    0x00200027: "X",  # Pyramid Label
    0x00200052: "U",  # Frame of Reference UID
    0x00200200: "U",  # Synchronization Frame of Reference UID
    0x00203401: "X",  # Modifying Device ID
    0x00203403: "X",  # Modified Image Date
    0x00203405: "X",  # Modified Image Time
    0x00203406: "X",  # Modified Image Description
    0x00204000: "X",  # Image Comments
    0x00209158: "X",  # Frame Comments
    0x00209161: "U",  # Concatenation UID
    0x00209164: "U",  # Dimension Organization UID
    0x00281199: "U",  # Palette Color Lookup Table UID
    0x00281214: "U",  # Large Palette Color Lookup Table UID
    0x00284000: "X",  # Image Presentation Comments
    0x00320012: "X",  # Study ID Issuer
    0x00320032: "X",  # Study Verified Date
    0x00320033: "X",  # Study Verified Time
    0x00320034: "X",  # Study Read Date
    0x00320035: "X",  # Study Read Time
    0x00321000: "X",  # Scheduled Study Start Date
    0x00321001: "X",  # Scheduled Study Start Time
    0x00321010: "X",  # Scheduled Study Stop Date
    0x00321011: "X",  # Scheduled Study Stop Time
    0x00321020: "X",  # Scheduled Study Location
    0x00321021: "X",  # Scheduled Study Location AE Title
    0x00321030: "X",  # Reason for Study
    0x00321032: "X",  # Requesting Physician
    0x00321033: "X",  # Requesting Service
    0x00321040: "X",  # Study Arrival Date
    0x00321041: "X",  # Study Arrival Time
    0x00321050: "X",  # Study Completion Date
    0x00321051: "X",  # Study Completion Time
    0x00321060: "X/Z",  # Requested Procedure Description
    0x00321066: "X",  # Reason for Visit
    0x00321067: "X",  # Reason for Visit Code Sequence
    0x00321070: "X",  # Requested Contrast Agent
    0x00324000: "X",  # Study Comments
    0x00340001: "D",  # Flow Identifier Sequence
    0x00340002: "D",  # Flow Identifier
    0x00340005: "D",  # Source Identifier
    0x00340007: "D",  # Frame Origin Timestamp
    0x00380004: "X",  # Referenced Patient Alias Sequence
    0x00380010: "X",  # Admission ID
    0x00380011: "X",  # Issuer of Admission ID
    0x00380014: "X",  # Issuer of Admission ID Sequence
    0x0038001A: "X",  # Scheduled Admission Date
    0x0038001B: "X",  # Scheduled Admission Time
    0x0038001C: "X",  # Scheduled Discharge Date
    0x0038001D: "X",  # Scheduled Discharge Time
    0x0038001E: "X",  # Scheduled Patient Institution Residence
    0x00380020: "X",  # Admitting Date
    0x00380021: "X",  # Admitting Time
    0x00380030: "X",  # Discharge Date
    0x00380032: "X",  # Discharge Time
    0x00380040: "X",  # Discharge Diagnosis Description
    0x00380050: "X",  # Special Needs
    0x00380060: "X",  # Service Episode ID
    0x00380061: "X",  # Issuer of Service Episode ID
    0x00380062: "X",  # Service Episode Description
    0x00380064: "X",  # Issuer of Service Episode ID Sequence
    0x00380300: "X",  # Current Patient Location
    0x00380400: "X",  # Patient's Institution Residence
    0x00380500: "X",  # Patient State
    0x00384000: "X",  # Visit Comments
    0x003A0020: "X",  # Multiplex Group Label
    0x003A0203: "X",  # Channel Label
    0x003A020C: "X",  # Channel Derivation Description
    0x003A0310: "U",  # Multiplex Group UID
    0x003A0314: "D",  # Impedance Measurement DateTime
    0x003A0329: "X",  # Waveform Filter Description
    0x003A032B: "X",  # Filter Lookup Table Description
    0x00400001: "X",  # Scheduled Station AE Title
    0x00400002: "X",  # Scheduled Procedure Step Start Date
    0x00400003: "X",  # Scheduled Procedure Step Start Time
    0x00400004: "X",  # Scheduled Procedure Step End Date
    0x00400005: "X",  # Scheduled Procedure Step End Time
    0x00400006: "X",  # Scheduled Performing Physician's Name
    0x00400007: "X",  # Scheduled Procedure Step Description
    0x00400009: "X",  # Scheduled Procedure Step ID
    0x0040000B: "X",  # Scheduled Performing Physician Identification Sequence
    0x00400010: "X",  # Scheduled Station Name
    0x00400011: "X",  # Scheduled Procedure Step Location
    0x00400012: "X",  # Pre-Medication
    0x00400241: "X",  # Performed Station AE Title
    0x00400242: "X",  # Performed Station Name
    0x00400243: "X",  # Performed Location
    0x00400244: "X",  # Performed Procedure Step Start Date
    0x00400245: "X",  # Performed Procedure Step Start Time
    0x00400250: "X",  # Performed Procedure Step End Date
    0x00400251: "X",  # Performed Procedure Step End Time
    0x00400253: "X",  # Performed Procedure Step ID
    0x00400254: "X",  # Performed Procedure Step Description
    0x00400275: "X",  # Request Attributes Sequence
    0x00400280: "X",  # Comments on the Performed Procedure Step
    0x00400310: "X",  # Comments on Radiation Dose
    0x0040050A: "X",  # Specimen Accession Number
    0x00400512: "D",  # Container Identifier
    0x00400513: "Z",  # Issuer of the Container Identifier Sequence
    0x0040051A: "X",  # Container Description
    0x00400551: "D",  # Specimen Identifier
    0x00400554: "U",  # Specimen UID
    0x00400555: "X/Z",  # Acquisition Context Sequence
    0x00400556: "X",  # Acquisition Context Description
    0x00400562: "Z",  # Issuer of the Specimen Identifier Sequence
    0x00400600: "X",  # Specimen Short Description
    0x00400602: "X",  # Specimen Detailed Description
    0x00400610: "Z",  # Specimen Preparation Sequence
    0x004006FA: "X",  # Slide Identifier
    0x00401001: "X",  # Requested Procedure ID
    0x00401002: "X",  # Reason for the Requested Procedure
    0x00401004: "X",  # Patient Transport Arrangements
    0x00401005: "X",  # Requested Procedure Location
    0x0040100A: "X",  # Reason for Requested Procedure Code Sequence
    0x00401010: "X",  # Names of Intended Recipients of Results
    0x00401011: "X",  # Intended Recipients of Results Identification Sequence
    0x00401101: "D",  # Person Identification Code Sequence
    0x00401102: "X",  # Person's Address
    0x00401103: "X",  # Person's Telephone Numbers
    0x00401104: "X",  # Person's Telecom Information
    0x00401400: "X",  # Requested Procedure Comments
    0x00402001: "X",  # Reason for the Imaging Service Request
    0x00402004: "X",  # Issue Date of Imaging Service Request
    0x00402005: "X",  # Issue Time of Imaging Service Request
    0x00402008: "X",  # Order Entered By
    0x00402009: "X",  # Order Enterer's Location
    0x00402010: "X",  # Order Callback Phone Number
    0x00402011: "X",  # Order Callback Telecom Information
    0x00402016: "Z",  # Placer Order Number / Imaging Service Request
    0x00402017: "Z",  # Filler Order Number / Imaging Service Request
    0x00402400: "X",  # Imaging Service Request Comments
    0x00403001: "X",  # Confidentiality Constraint on Patient Data Description
    0x00404005: "X",  # Scheduled Procedure Step Start DateTime
    0x00404008: "X",  # Scheduled Procedure Step Expiration DateTime
    0x00404010: "X",  # Scheduled Procedure Step Modification DateTime
    0x00404011: "X",  # Expected Completion DateTime
    0x00404023: "U",  # Referenced General Purpose Scheduled Procedure Step Transaction UID
    0x00404025: "X",  # Scheduled Station Name Code Sequence
    0x00404027: "X",  # Scheduled Station Geographic Location Code Sequence
    0x00404028: "X",  # Performed Station Name Code Sequence
    0x00404030: "X",  # Performed Station Geographic Location Code Sequence
    0x00404034: "X",  # Scheduled Human Performers Sequence
    0x00404035: "X",  # Actual Human Performers Sequence
    0x00404036: "X",  # Human Performer's Organization
    0x00404037: "X",  # Human Performer's Name
    0x00404050: "X",  # Performed Procedure Step Start DateTime
    0x00404051: "X",  # Performed Procedure Step End DateTime
    0x00404052: "X",  # Procedure Step Cancellation DateTime
    0x0040A023: "X",  # Findings Group Recording Date (Trial)
    0x0040A024: "X",  # Findings Group Recording Time (Trial)
    0x0040A027: "D",  # Verifying Organization
    0x0040A030: "D",  # Verification DateTime
    0x0040A032: "X/D",  # Observation DateTime
    0x0040A033: "X",  # Observation Start DateTime
    0x0040A034: "X",  # Effective Start DateTime
    0x0040A035: "X",  # Effective Stop DateTime
    0x0040A073: "D",  # Verifying Observer Sequence
    0x0040A075: "D",  # Verifying Observer Name
    0x0040A078: "X",  # Author Observer Sequence
    0x0040A07A: "X",  # Participant Sequence
    0x0040A07C: "X",  # Custodial Organization Sequence
    0x0040A082: "Z",  # Participation DateTime
    0x0040A088: "Z",  # Verifying Observer Identification Code Sequence
    0x0040A110: "X",  # Date of Document or Verbal Transaction (Trial)
    0x0040A112: "X",  # Time of Document Creation or Verbal Transaction (Trial)
    0x0040A120: "D",  # DateTime
    0x0040A121: "D",  # Date
    0x0040A122: "D",  # Time
    0x0040A123: "D",  # Person Name
    0x0040A124: "U",  # UID
    0x0040A13A: "D",  # Referenced DateTime
    0x0040A171: "U",  # Observation UID
    0x0040A172: "U",  # Referenced Observation UID (Trial)
    0x0040A192: "X",  # Observation Date (Trial)
    0x0040A193: "X",  # Observation Time (Trial)
    0x0040A307: "X",  # Current Observer (Trial)
    0x0040A352: "X",  # Verbal Source (Trial)
    0x0040A353: "X",  # Address (Trial)
    0x0040A354: "X",  # Telephone Number (Trial)
    0x0040A358: "X",  # Verbal Source Identifier Code Sequence (Trial)
    0x0040A402: "U",  # Observation Subject UID (Trial)
    0x0040A730: "D",  # Content Sequence
    0x0040B020: "X/D",  # Waveform Annotation Sequence
    0x0040B034: "X",  # Annotation DateTime
    0x0040B036: "X",  # Segment Definition DateTime
    0x0040B03B: "X",  # Montage Name
    0x0040B03F: "X",  # Montage Channel Label
    0x0040DB06: "X",  # Template Version
    0x0040DB07: "X",  # Template Local Version
    0x0040DB0C: "U",  # Template Extension Organization UID
    0x0040DB0D: "U",  # Template Extension Creator UID
    0x0040E004: "X",  # HL7 Document Effective Time
    0x0040E012: "X",  # Display URI
    0x00420011: "D",  # Encapsulated Document
    0x00440004: "X",  # Approval Status DateTime
    0x0044000B: "X",  # Product Expiration DateTime
    0x00440010: "X",  # Substance Administration DateTime
    0x00440104: "D",  # Assertion DateTime
    0x00440105: "X",  # Assertion Expiration DateTime
    0x0050001B: "X",  # Container Component ID
    0x00500020: "X",  # Device Description
    0x00500021: "X",  # Long Device Description
    0x00620021: "U",  # Tracking UID
    0x00640003: "U",  # Source Frame of Reference UID
    0x00686226: "D",  # Effective DateTime
    0x00686270: "D",  # Information Issue DateTime
    0x006A0003: "D",  # Annotation Group UID
    0x006A0005: "D",  # Annotation Group Label
    0x006A0006: "X",  # Annotation Group Description
    0x00700001: "D",  # Graphic Annotation Sequence
    0x00700006: "D",  # Unformatted Text Value
    0x00700082: "X",  # Presentation Creation Date
    0x00700083: "X",  # Presentation Creation Time
    0x00700084: "Z/D",  # Content Creator's Name
    0x00700086: "X",  # Content Creator's Identification Code Sequence
    0x0070031A: "U",  # Fiducial UID
    0x00701101: "U",  # Presentation Display Collection UID
    0x00701102: "U",  # Presentation Sequence Collection UID
    0x0072000A: "D",  # Hanging Protocol Creation DateTime
    0x0072005E: "D",  # Selector AE Value
    0x0072005F: "D",  # Selector AS Value
    0x00720061: "D",  # Selector DA Value
    0x00720063: "D",  # Selector DT Value
    0x00720065: "D",  # Selector OB Value
    0x00720066: "D",  # Selector LO Value
    0x00720068: "D",  # Selector LT Value
    0x0072006A: "D",  # Selector PN Value
    0x0072006B: "D",  # Selector TM Value
    0x0072006C: "D",  # Selector SH Value
    0x0072006D: "D",  # Selector UN Value
    0x0072006E: "D",  # Selector ST Value
    0x00720070: "D",  # Selector UT Value
    0x00720071: "D",  # Selector UR Value
    0x00741234: "X",  # Receiving AE
    0x00741236: "X",  # Requesting AE
    0x00880140: "U",  # Storage Media File-set UID
    0x00880200: "X",  # Icon Image Sequence
    0x00880904: "X",  # Topic Title
    0x00880906: "X",  # Topic Subject
    0x00880910: "X",  # Topic Author
    0x00880912: "X",  # Topic Keywords
    0x01000420: "X",  # SOP Authorization DateTime
    0x04000100: "U",  # Digital Signature UID
    0x04000105: "D",  # Digital Signature DateTime
    0x04000115: "D",  # Certificate of Signer
    0x04000310: "X",  # Certified Timestamp
    0x04000402: "X",  # Referenced Digital Signature Sequence
    0x04000403: "X",  # Referenced SOP Instance MAC Sequence
    0x04000404: "X",  # MAC
    0x04000550: "X",  # Modified Attributes Sequence
    0x04000551: "X",  # Nonconforming Modified Attributes Sequence
    0x04000552: "X",  # Nonconforming Data Element Value
    0x04000561: "X",  # Original Attributes Sequence
    0x04000562: "D",  # Attribute Modification DateTime
    0x04000563: "D",  # Modifying System
    0x04000564: "Z",  # Source of Previous Values
    0x04000565: "D",  # Reason for the Attribute Modification
    0x04000600: "X",  # Instance Origin Status
    0x20300020: "X",  # Text String
    0x21000040: "X",  # Creation Date
    0x21000050: "X",  # Creation Time
    0x21000070: "X",  # Originator
    0x21000140: "D",  # Destination AE
    0x22000002: "X/Z",  # Label Text
    0x22000005: "X/Z",  # Barcode Value
    0x30020121: "X",  # Position Acquisition Template Name
    0x30020123: "X",  # Position Acquisition Template Description
    0x3004007F: "X",  # Dose Calculation Model Name
    0x30060002: "D",  # Structure Set Label
    0x30060004: "X",  # Structure Set Name
    0x30060006: "X",  # Structure Set Description
    0x30060008: "Z",  # Structure Set Date
    0x30060009: "Z",  # Structure Set Time
    0x30060024: "U",  # Referenced Frame of Reference UID
    0x30060026: "Z",  # ROI Name
    0x30060028: "X",  # ROI Description
    0x3006002D: "X",  # ROI DateTime
    0x3006002E: "X",  # ROI Observation DateTime
    0x30060038: "X",  # ROI Generation Description
    0x3006004D: "X",  # ROI Creator Sequence
    0x3006004E: "X",  # ROI Interpreter Sequence
    0x30060085: "X",  # ROI Observation Label
    0x30060088: "X",  # ROI Observation Description
    0x300600A6: "Z",  # ROI Interpreter
    0x300600C2: "U",  # Related Frame of Reference UID
    0x30080024: "D",  # Treatment Control Point Date
    0x30080025: "D",  # Treatment Control Point Time
    0x30080054: "X/D",  # First Treatment Date
    0x30080056: "X/D",  # Most Recent Treatment Date
    0x30080105: "X/Z",  # Source Serial Number
    0x30080162: "D",  # Safe Position Exit Date
    0x30080164: "D",  # Safe Position Exit Time
    0x30080166: "D",  # Safe Position Return Date
    0x30080168: "D",  # Safe Position Return Time
    0x30080250: "X/D",  # Treatment Date
    0x30080251: "X/D",  # Treatment Time
    0x300A0002: "D",  # RT Plan Label
    0x300A0003: "X",  # RT Plan Name
    0x300A0004: "X",  # RT Plan Description
    0x300A0006: "X/D",  # RT Plan Date
    0x300A0007: "X/D",  # RT Plan Time
    0x300A000B: "X",  # Treatment Sites
    0x300A000E: "X",  # Prescription Description
    0x300A0013: "U",  # Dose Reference UID
    0x300A0016: "X",  # Dose Reference Description
    0x300A0054: "U",  # Table Top Position Alignment UID
    0x300A0072: "X",  # Fraction Group Description
    0x300A0083: "U",  # Referenced Dose Reference UID
    0x300A00B2: "X/Z",  # Treatment Machine Name
    0x300A00C3: "X",  # Beam Description
    0x300A00DD: "X",  # Bolus Description
    0x300A0196: "X",  # Fixation Device Description
    0x300A01A6: "X",  # Shielding Device Description
    0x300A01B2: "X",  # Setup Technique Description
    0x300A0216: "X",  # Source Manufacturer
    0x300A022C: "D",  # Source Strength Reference Date
    0x300A022E: "D",  # Source Strength Reference Time
    0x300A02EB: "X",  # Compensator Description
    0x300A0608: "D",  # Treatment Position Group Label
    0x300A0609: "U",  # Treatment Position Group UID
    0x300A0611: "Z",  # RT Accessory Holder Slot ID
    0x300A0615: "Z",  # RT Accessory Device Slot ID
    0x300A0619: "D",  # Radiation Dose Identification Label
    0x300A0623: "D",  # Radiation Dose In-Vivo Measurement Label
    0x300A062A: "D",  # RT Tolerance Set Label
    0x300A0650: "U",  # Patient Setup UID
    0x300A0676: "X",  # Equipment Frame of Reference Description
    0x300A067C: "D",  # Radiation Generation Mode Label
    0x300A067D: "Z",  # Radiation Generation Mode Description
    0x300A0700: "U",  # Treatment Session UID
    0x300A0734: "D",  # Treatment Tolerance Violation Description
    0x300A0736: "D",  # Treatment Tolerance Violation DateTime
    0x300A073A: "D",  # Recorded RT Control Point DateTime
    0x300A0741: "D",  # Interlock DateTime
    0x300A0742: "D",  # Interlock Description
    0x300A0760: "D",  # Override DateTime
    0x300A0783: "D",  # Interlock Origin Description
    0x300A0785: "U",  # Referenced Treatment Position Group UID
    0x300A078E: "X",  # Patient Treatment Preparation Procedure Parameter Description
    0x300A0792: "X",  # Patient Treatment Preparation Method Description
    0x300A0794: "X",  # Patient Setup Photo Description
    0x300A079A: "X",  # Displacement Reference Label
    0x300C0113: "X",  # Reason for Omission Description
    0x300C0127: "D",  # Beam Hold Transition DateTime
    0x300E0004: "Z",  # Review Date
    0x300E0005: "Z",  # Review Time
    0x300E0008: "X/Z",  # Reviewer Name
    0x30100006: "U",  # Conceptual Volume UID
    0x3010000B: "U",  # Referenced Conceptual Volume UID
    0x3010000F: "Z",  # Conceptual Volume Combination Description
    0x30100013: "U",  # Constituent Conceptual Volume UID
    0x30100015: "U",  # Source Conceptual Volume UID
    0x30100017: "Z",  # Conceptual Volume Description
    0x3010001B: "Z",  # Device Alternate Identifier
    0x3010002D: "D",  # Device Label
    0x30100031: "U",  # Referenced Fiducials UID
    0x30100033: "D",  # User Content Label
    0x30100034: "D",  # User Content Long Label
    0x30100035: "D",  # Entity Label
    0x30100036: "X",  # Entity Name
    0x30100037: "X",  # Entity Description
    0x30100038: "D",  # Entity Long Label
    0x3010003B: "U",  # RT Treatment Phase UID
    0x30100043: "Z",  # Manufacturer's Device Identifier
    0x3010004C: "X/D",  # Intended Phase Start Date
    0x3010004D: "X/D",  # Intended Phase End Date
    0x30100054: "D",  # RT Prescription Label
    0x30100056: "X/D",  # RT Treatment Approach Label
    0x3010005A: "Z",  # RT Physician Intent Narrative
    0x3010005C: "Z",  # Reason for Superseding
    0x30100061: "X",  # Prior Treatment Dose Description
    0x3010006E: "U",  # Dosimetric Objective UID
    0x3010006F: "U",  # Referenced Dosimetric Objective UID
    0x30100077: "X/D",  # Treatment Site
    0x3010007A: "Z",  # Treatment Technique Notes
    0x3010007B: "Z",  # Prescription Notes
    0x3010007F: "Z",  # Fractionation Notes
    0x30100081: "Z",  # Prescription Notes Sequence
    0x30100085: "X",  # Intended Fraction Start Time
    0x40000010: "X",  # Arbitrary
    0x40004000: "X",  # Text Comments
    0x40080040: "X",  # Results ID
    0x40080042: "X",  # Results ID Issuer
    0x40080100: "X",  # Interpretation Recorded Date
    0x40080101: "X",  # Interpretation Recorded Time
    0x40080102: "X",  # Interpretation Recorder
    0x40080108: "X",  # Interpretation Transcription Date
    0x40080109: "X",  # Interpretation Transcription Time
    0x4008010A: "X",  # Interpretation Transcriber
    0x4008010B: "X",  # Interpretation Text
    0x4008010C: "X",  # Interpretation Author
    0x40080111: "X",  # Interpretation Approver Sequence
    0x40080112: "X",  # Interpretation Approval Date
    0x40080113: "X",  # Interpretation Approval Time
    0x40080114: "X",  # Physician Approving Interpretation
    0x40080115: "X",  # Interpretation Diagnosis Description
    0x40080118: "X",  # Results Distribution List Sequence
    0x40080119: "X",  # Distribution Name
    0x4008011A: "X",  # Distribution Address
    0x40080200: "X",  # Interpretation ID
    0x40080202: "X",  # Interpretation ID Issuer
    0x40080300: "X",  # Impressions
    0x40084000: "X",  # Results Comments
    0xFFFAFFFA: "X",  # Digital Signatures Sequence
    0xFFFCFFFC: "X",  # Data Set Trailing Padding
}

# Repeating groups. The "xx" part of the group (bits 16-23) is zeroed in the key:
#   overlay rows (60xx,3000) and (60xx,4000): key == tag & 0xFF00FFFF
#   curve data (50xx,xxxx), every element of the group: key 0x50000000,
#   matched by tag & 0xFF000000 == 0x50000000
REPEATING_GROUPS: dict[int, str] = {
    0x50000000: "X",  # Curve Data (50xx,xxxx)
    0x60003000: "X",  # Overlay Data (60xx,3000)
    0x60004000: "X",  # Overlay Comments (60xx,4000)
}


# The option columns of Table E.1-1 (PS3.15 E.3): column key -> {tag: action}, where an option
# names an action for the attribute. Data from innolitics/dicom-standard (MIT),
# standard/confidentiality_profile_attributes.json at commit 7f4749d (Jan 2025; the file was last
# regenerated for PS3.15 2024b). Attributes added to the Basic Profile column above since then have
# no option entry here: only the Basic Profile applies to them. Keys as in that file (DESIGN.md).
# Repeating groups (Clean Graphics) are in OPTION_REPEATING_GROUPS, keyed like REPEATING_GROUPS;
# private attributes (Retain Safe Private, "C") in SAFE_PRIVATE.
OPTION_COLUMNS: dict[str, dict[int, str]] = {
    "rtnLongModifDatesOpt": {
        0x00080012: "C",  # Instance Creation Date
        0x00080013: "C",  # Instance Creation Time
        0x00080015: "C",  # Instance Coercion DateTime
        0x00080020: "C",  # Study Date
        0x00080021: "C",  # Series Date
        0x00080022: "C",  # Acquisition Date
        0x00080023: "C",  # Content Date
        0x00080024: "C",  # Overlay Date
        0x00080025: "C",  # Curve Date
        0x0008002A: "C",  # Acquisition DateTime
        0x00080030: "C",  # Study Time
        0x00080031: "C",  # Series Time
        0x00080032: "C",  # Acquisition Time
        0x00080033: "C",  # Content Time
        0x00080034: "C",  # Overlay Time
        0x00080035: "C",  # Curve Time
        0x00080106: "C",  # Context Group Version
        0x00080107: "C",  # Context Group Local Version
        0x00080201: "C",  # Timezone Offset From UTC
        0x001021D0: "C",  # Last Menstrual Date
        0x00120086: "C",  # Ethics Committee Approval Effectiveness Start Date
        0x00120087: "C",  # Ethics Committee Approval Effectiveness End Date
        0x0014407C: "C",  # Calibration Time
        0x0014407E: "C",  # Calibration Date
        0x0016008D: "C",  # GPS Date Stamp
        0x00180027: "C",  # Intervention Drug Stop Time
        0x00180035: "C",  # Intervention Drug Start Time
        0x00181012: "C",  # Date of Secondary Capture
        0x00181014: "C",  # Time of Secondary Capture
        0x00181042: "C",  # Contrast/Bolus Start Time
        0x00181043: "C",  # Contrast/Bolus Stop Time
        0x00181072: "C",  # Radiopharmaceutical Start Time
        0x00181073: "C",  # Radiopharmaceutical Stop Time
        0x00181078: "C",  # Radiopharmaceutical Start DateTime
        0x00181079: "C",  # Radiopharmaceutical Stop DateTime
        0x00181200: "C",  # Date of Last Calibration
        0x00181201: "C",  # Time of Last Calibration
        0x00181202: "C",  # DateTime of Last Calibration
        0x00181203: "C",  # Calibration DateTime
        0x00181204: "C",  # Date of Manufacture
        0x00181205: "C",  # Date of Installation
        0x0018700C: "C",  # Date of Last Detector Calibration
        0x0018700E: "C",  # Time of Last Detector Calibration
        0x00189074: "C",  # Frame Acquisition DateTime
        0x00189151: "C",  # Frame Reference DateTime
        0x00189369: "C",  # Source Start DateTime
        0x0018936A: "C",  # Source End DateTime
        0x00189516: "C",  # Start Acquisition DateTime
        0x00189517: "C",  # End Acquisition DateTime
        0x00189623: "C",  # Functional Sync Pulse
        0x00189701: "C",  # Decay Correction DateTime
        0x00189804: "C",  # Exclusion Start DateTime
        0x00189919: "C",  # Instruction Performed DateTime
        0x0018A002: "C",  # Contribution DateTime
        0x00203403: "C",  # Modified Image Date
        0x00203405: "C",  # Modified Image Time
        0x00320032: "C",  # Study Verified Date
        0x00320033: "C",  # Study Verified Time
        0x00320034: "C",  # Study Read Date
        0x00320035: "C",  # Study Read Time
        0x00321000: "C",  # Scheduled Study Start Date
        0x00321001: "C",  # Scheduled Study Start Time
        0x00321010: "C",  # Scheduled Study Stop Date
        0x00321011: "C",  # Scheduled Study Stop Time
        0x00321040: "C",  # Study Arrival Date
        0x00321041: "C",  # Study Arrival Time
        0x00321050: "C",  # Study Completion Date
        0x00321051: "C",  # Study Completion Time
        0x00340007: "C",  # Frame Origin Timestamp
        0x0038001A: "C",  # Scheduled Admission Date
        0x0038001B: "C",  # Scheduled Admission Time
        0x0038001C: "C",  # Scheduled Discharge Date
        0x0038001D: "C",  # Scheduled Discharge Time
        0x00380020: "C",  # Admitting Date
        0x00380021: "C",  # Admitting Time
        0x00380030: "C",  # Discharge Date
        0x00380032: "C",  # Discharge Time
        0x003A0314: "C",  # Impedance Measurement DateTime
        0x00400002: "C",  # Scheduled Procedure Step Start Date
        0x00400003: "C",  # Scheduled Procedure Step Start Time
        0x00400004: "C",  # Scheduled Procedure Step End Date
        0x00400005: "C",  # Scheduled Procedure Step End Time
        0x00400244: "C",  # Performed Procedure Step Start Date
        0x00400245: "C",  # Performed Procedure Step Start Time
        0x00400250: "C",  # Performed Procedure Step End Date
        0x00400251: "C",  # Performed Procedure Step End Time
        0x00402004: "C",  # Issue Date of Imaging Service Request
        0x00402005: "C",  # Issue Time of Imaging Service Request
        0x00404005: "C",  # Scheduled Procedure Step Start DateTime
        0x00404008: "C",  # Scheduled Procedure Step Expiration DateTime
        0x00404010: "C",  # Scheduled Procedure Step Modification DateTime
        0x00404011: "C",  # Expected Completion DateTime
        0x00404050: "C",  # Performed Procedure Step Start DateTime
        0x00404051: "C",  # Performed Procedure Step End DateTime
        0x00404052: "C",  # Procedure Step Cancellation DateTime
        0x0040A023: "C",  # Findings Group Recording Date (Trial)
        0x0040A024: "C",  # Findings Group Recording Time (Trial)
        0x0040A030: "C",  # Verification DateTime
        0x0040A032: "C",  # Observation DateTime
        0x0040A033: "C",  # Observation Start DateTime
        0x0040A082: "C",  # Participation DateTime
        0x0040A110: "C",  # Date of Document or Verbal Transaction (Trial)
        0x0040A112: "C",  # Time of Document Creation or Verbal Transaction (Trial)
        0x0040A120: "C",  # DateTime
        0x0040A121: "C",  # Date
        0x0040A122: "C",  # Time
        0x0040A13A: "C",  # Referenced DateTime
        0x0040A192: "C",  # Observation Date (Trial)
        0x0040A193: "C",  # Observation Time (Trial)
        0x0040DB06: "C",  # Template Version
        0x0040DB07: "C",  # Template Local Version
        0x0040E004: "C",  # HL7 Document Effective Time
        0x00440004: "C",  # Approval Status DateTime
        0x0044000B: "C",  # Product Expiration DateTime
        0x00440010: "C",  # Substance Administration DateTime
        0x00440104: "C",  # Assertion DateTime
        0x00440105: "C",  # Assertion Expiration DateTime
        0x00686226: "C",  # Effective DateTime
        0x00686270: "C",  # Information Issue DateTime
        0x00700082: "C",  # Presentation Creation Date
        0x00700083: "C",  # Presentation Creation Time
        0x0072000A: "C",  # Hanging Protocol Creation DateTime
        0x00720061: "C",  # Selector DA Value
        0x00720063: "C",  # Selector DT Value
        0x0072006B: "C",  # Selector TM Value
        0x01000420: "C",  # SOP Authorization DateTime
        0x04000105: "C",  # Digital Signature DateTime
        0x04000310: "C",  # Certified Timestamp
        0x04000562: "C",  # Attribute Modification DateTime
        0x21000040: "C",  # Creation Date
        0x21000050: "C",  # Creation Time
        0x30060008: "C",  # Structure Set Date
        0x30060009: "C",  # Structure Set Time
        0x3006002D: "C",  # ROI DateTime
        0x3006002E: "C",  # ROI Observation DateTime
        0x30080024: "C",  # Treatment Control Point Date
        0x30080025: "C",  # Treatment Control Point Time
        0x30080054: "C",  # First Treatment Date
        0x30080056: "C",  # Most Recent Treatment Date
        0x30080162: "C",  # Safe Position Exit Date
        0x30080164: "C",  # Safe Position Exit Time
        0x30080166: "C",  # Safe Position Return Date
        0x30080168: "C",  # Safe Position Return Time
        0x30080250: "C",  # Treatment Date
        0x30080251: "C",  # Treatment Time
        0x300A0006: "C",  # RT Plan Date
        0x300A0007: "C",  # RT Plan Time
        0x300A022C: "C",  # Source Strength Reference Date
        0x300A022E: "C",  # Source Strength Reference Time
        0x300A0736: "C",  # Treatment Tolerance Violation DateTime
        0x300A073A: "C",  # Recorded RT Control Point DateTime
        0x300A0741: "C",  # Interlock DateTime
        0x300A0760: "C",  # Override DateTime
        0x300C0127: "C",  # Beam Hold Transition DateTime
        0x300E0004: "C",  # Review Date
        0x300E0005: "C",  # Review Time
        0x3010004C: "C",  # Intended Phase Start Date
        0x3010004D: "C",  # Intended Phase End Date
        0x30100085: "C",  # Intended Fraction Start Time
        0x40080100: "C",  # Interpretation Recorded Date
        0x40080101: "C",  # Interpretation Recorded Time
        0x40080108: "C",  # Interpretation Transcription Date
        0x40080109: "C",  # Interpretation Transcription Time
        0x40080112: "C",  # Interpretation Approval Date
        0x40080113: "C",  # Interpretation Approval Time
    },
    "rtnLongFullDatesOpt": {
        0x00080012: "K",  # Instance Creation Date
        0x00080013: "K",  # Instance Creation Time
        0x00080015: "K",  # Instance Coercion DateTime
        0x00080020: "K",  # Study Date
        0x00080021: "K",  # Series Date
        0x00080022: "K",  # Acquisition Date
        0x00080023: "K",  # Content Date
        0x00080024: "K",  # Overlay Date
        0x00080025: "K",  # Curve Date
        0x0008002A: "K",  # Acquisition DateTime
        0x00080030: "K",  # Study Time
        0x00080031: "K",  # Series Time
        0x00080032: "K",  # Acquisition Time
        0x00080033: "K",  # Content Time
        0x00080034: "K",  # Overlay Time
        0x00080035: "K",  # Curve Time
        0x00080106: "K",  # Context Group Version
        0x00080107: "K",  # Context Group Local Version
        0x00080201: "K",  # Timezone Offset From UTC
        0x001021D0: "K",  # Last Menstrual Date
        0x00120086: "K",  # Ethics Committee Approval Effectiveness Start Date
        0x00120087: "K",  # Ethics Committee Approval Effectiveness End Date
        0x0014407C: "K",  # Calibration Time
        0x0014407E: "K",  # Calibration Date
        0x0016008D: "K",  # GPS Date Stamp
        0x00180027: "K",  # Intervention Drug Stop Time
        0x00180035: "K",  # Intervention Drug Start Time
        0x00181012: "K",  # Date of Secondary Capture
        0x00181014: "K",  # Time of Secondary Capture
        0x00181042: "K",  # Contrast/Bolus Start Time
        0x00181043: "K",  # Contrast/Bolus Stop Time
        0x00181072: "K",  # Radiopharmaceutical Start Time
        0x00181073: "K",  # Radiopharmaceutical Stop Time
        0x00181078: "K",  # Radiopharmaceutical Start DateTime
        0x00181079: "K",  # Radiopharmaceutical Stop DateTime
        0x00181200: "K",  # Date of Last Calibration
        0x00181201: "K",  # Time of Last Calibration
        0x00181202: "K",  # DateTime of Last Calibration
        0x00181203: "K",  # Calibration DateTime
        0x00181204: "K",  # Date of Manufacture
        0x00181205: "K",  # Date of Installation
        0x0018700C: "K",  # Date of Last Detector Calibration
        0x0018700E: "K",  # Time of Last Detector Calibration
        0x00189074: "K",  # Frame Acquisition DateTime
        0x00189151: "K",  # Frame Reference DateTime
        0x00189369: "K",  # Source Start DateTime
        0x0018936A: "K",  # Source End DateTime
        0x00189516: "K",  # Start Acquisition DateTime
        0x00189517: "K",  # End Acquisition DateTime
        0x00189623: "K",  # Functional Sync Pulse
        0x00189701: "K",  # Decay Correction DateTime
        0x00189804: "K",  # Exclusion Start DateTime
        0x00189919: "K",  # Instruction Performed DateTime
        0x0018A002: "K",  # Contribution DateTime
        0x00203403: "K",  # Modified Image Date
        0x00203405: "K",  # Modified Image Time
        0x00320032: "K",  # Study Verified Date
        0x00320033: "K",  # Study Verified Time
        0x00320034: "K",  # Study Read Date
        0x00320035: "K",  # Study Read Time
        0x00321000: "K",  # Scheduled Study Start Date
        0x00321001: "K",  # Scheduled Study Start Time
        0x00321010: "K",  # Scheduled Study Stop Date
        0x00321011: "K",  # Scheduled Study Stop Time
        0x00321040: "K",  # Study Arrival Date
        0x00321041: "K",  # Study Arrival Time
        0x00321050: "K",  # Study Completion Date
        0x00321051: "K",  # Study Completion Time
        0x00340007: "K",  # Frame Origin Timestamp
        0x0038001A: "K",  # Scheduled Admission Date
        0x0038001B: "K",  # Scheduled Admission Time
        0x0038001C: "K",  # Scheduled Discharge Date
        0x0038001D: "K",  # Scheduled Discharge Time
        0x00380020: "K",  # Admitting Date
        0x00380021: "K",  # Admitting Time
        0x00380030: "K",  # Discharge Date
        0x00380032: "K",  # Discharge Time
        0x003A0314: "K",  # Impedance Measurement DateTime
        0x00400002: "K",  # Scheduled Procedure Step Start Date
        0x00400003: "K",  # Scheduled Procedure Step Start Time
        0x00400004: "K",  # Scheduled Procedure Step End Date
        0x00400005: "K",  # Scheduled Procedure Step End Time
        0x00400244: "K",  # Performed Procedure Step Start Date
        0x00400245: "K",  # Performed Procedure Step Start Time
        0x00400250: "K",  # Performed Procedure Step End Date
        0x00400251: "K",  # Performed Procedure Step End Time
        0x00402004: "K",  # Issue Date of Imaging Service Request
        0x00402005: "K",  # Issue Time of Imaging Service Request
        0x00404005: "K",  # Scheduled Procedure Step Start DateTime
        0x00404008: "K",  # Scheduled Procedure Step Expiration DateTime
        0x00404010: "K",  # Scheduled Procedure Step Modification DateTime
        0x00404011: "K",  # Expected Completion DateTime
        0x00404050: "K",  # Performed Procedure Step Start DateTime
        0x00404051: "K",  # Performed Procedure Step End DateTime
        0x00404052: "K",  # Procedure Step Cancellation DateTime
        0x0040A023: "K",  # Findings Group Recording Date (Trial)
        0x0040A024: "K",  # Findings Group Recording Time (Trial)
        0x0040A030: "K",  # Verification DateTime
        0x0040A032: "K",  # Observation DateTime
        0x0040A033: "K",  # Observation Start DateTime
        0x0040A082: "K",  # Participation DateTime
        0x0040A110: "K",  # Date of Document or Verbal Transaction (Trial)
        0x0040A112: "K",  # Time of Document Creation or Verbal Transaction (Trial)
        0x0040A120: "K",  # DateTime
        0x0040A121: "K",  # Date
        0x0040A122: "K",  # Time
        0x0040A13A: "K",  # Referenced DateTime
        0x0040A192: "K",  # Observation Date (Trial)
        0x0040A193: "K",  # Observation Time (Trial)
        0x0040DB06: "K",  # Template Version
        0x0040DB07: "K",  # Template Local Version
        0x0040E004: "K",  # HL7 Document Effective Time
        0x00440004: "K",  # Approval Status DateTime
        0x0044000B: "K",  # Product Expiration DateTime
        0x00440010: "K",  # Substance Administration DateTime
        0x00440104: "K",  # Assertion DateTime
        0x00440105: "K",  # Assertion Expiration DateTime
        0x00686226: "K",  # Effective DateTime
        0x00686270: "K",  # Information Issue DateTime
        0x00700082: "K",  # Presentation Creation Date
        0x00700083: "K",  # Presentation Creation Time
        0x0072000A: "K",  # Hanging Protocol Creation DateTime
        0x00720061: "K",  # Selector DA Value
        0x00720063: "K",  # Selector DT Value
        0x0072006B: "K",  # Selector TM Value
        0x01000420: "K",  # SOP Authorization DateTime
        0x04000105: "K",  # Digital Signature DateTime
        0x04000310: "K",  # Certified Timestamp
        0x04000562: "K",  # Attribute Modification DateTime
        0x21000040: "K",  # Creation Date
        0x21000050: "K",  # Creation Time
        0x30060008: "K",  # Structure Set Date
        0x30060009: "K",  # Structure Set Time
        0x3006002D: "K",  # ROI DateTime
        0x3006002E: "K",  # ROI Observation DateTime
        0x30080024: "K",  # Treatment Control Point Date
        0x30080025: "K",  # Treatment Control Point Time
        0x30080054: "K",  # First Treatment Date
        0x30080056: "K",  # Most Recent Treatment Date
        0x30080162: "K",  # Safe Position Exit Date
        0x30080164: "K",  # Safe Position Exit Time
        0x30080166: "K",  # Safe Position Return Date
        0x30080168: "K",  # Safe Position Return Time
        0x30080250: "K",  # Treatment Date
        0x30080251: "K",  # Treatment Time
        0x300A0006: "K",  # RT Plan Date
        0x300A0007: "K",  # RT Plan Time
        0x300A022C: "K",  # Source Strength Reference Date
        0x300A022E: "K",  # Source Strength Reference Time
        0x300A0736: "K",  # Treatment Tolerance Violation DateTime
        0x300A073A: "K",  # Recorded RT Control Point DateTime
        0x300A0741: "K",  # Interlock DateTime
        0x300A0760: "K",  # Override DateTime
        0x300C0127: "K",  # Beam Hold Transition DateTime
        0x300E0004: "K",  # Review Date
        0x300E0005: "K",  # Review Time
        0x3010004C: "K",  # Intended Phase Start Date
        0x3010004D: "K",  # Intended Phase End Date
        0x30100085: "K",  # Intended Fraction Start Time
        0x40080100: "K",  # Interpretation Recorded Date
        0x40080101: "K",  # Interpretation Recorded Time
        0x40080108: "K",  # Interpretation Transcription Date
        0x40080109: "K",  # Interpretation Transcription Time
        0x40080112: "K",  # Interpretation Approval Date
        0x40080113: "K",  # Interpretation Approval Time
    },
    "rtnPatCharsOpt": {
        0x00100040: "K",  # Patient's Sex
        0x00101010: "K",  # Patient's Age
        0x00101020: "K",  # Patient's Size
        0x00101030: "K",  # Patient's Weight
        0x00102110: "C",  # Allergies
        0x00102160: "K",  # Ethnic Group
        0x001021A0: "K",  # Smoking Status
        0x001021C0: "K",  # Pregnancy Status
        0x00102203: "K",  # Patient's Sex Neutered
        0x00380050: "C",  # Special Needs
        0x00380500: "C",  # Patient State
        0x00400012: "C",  # Pre-Medication
        0x0072005F: "K",  # Selector AS Value
    },
    "rtnDevIdOpt": {
        0x00080054: "C",  # Retrieve AE Title
        0x00080055: "C",  # Station AE Title
        0x00081000: "C",  # Network ID
        0x00081010: "K",  # Station Name
        0x0014407C: "K",  # Calibration Time
        0x0014407E: "K",  # Calibration Date
        0x0016004E: "K",  # Lens Specification
        0x0016004F: "K",  # Lens Make
        0x00160050: "K",  # Lens Model
        0x00160051: "K",  # Lens Serial Number
        0x00181000: "K",  # Device Serial Number
        0x00181002: "K",  # Device UID
        0x00181004: "K",  # Plate ID
        0x00181005: "K",  # Generator ID
        0x00181007: "K",  # Cassette ID
        0x00181008: "K",  # Gantry ID
        0x00181009: "K",  # Unique Device Identifier
        0x0018100A: "K",  # UDI Sequence
        0x0018100B: "K",  # Manufacturer's Device Class UID
        0x00181200: "K",  # Date of Last Calibration
        0x00181201: "K",  # Time of Last Calibration
        0x00181202: "K",  # DateTime of Last Calibration
        0x00181203: "K",  # Calibration DateTime
        0x00181204: "K",  # Date of Manufacture
        0x00181205: "K",  # Date of Installation
        0x00185011: "K",  # Transducer Identification Sequence
        0x0018700A: "K",  # Detector ID
        0x0018700C: "K",  # Date of Last Detector Calibration
        0x0018700E: "K",  # Time of Last Detector Calibration
        0x00189367: "K",  # X-Ray Source ID
        0x00189371: "K",  # X-Ray Detector ID
        0x00189373: "K",  # X-Ray Detector Label
        0x00203401: "K",  # Modifying Device ID
        0x00321020: "K",  # Scheduled Study Location
        0x00321021: "C",  # Scheduled Study Location AE Title
        0x00400001: "C",  # Scheduled Station AE Title
        0x00400010: "K",  # Scheduled Station Name
        0x00400011: "K",  # Scheduled Procedure Step Location
        0x00400241: "C",  # Performed Station AE Title
        0x00400242: "K",  # Performed Station Name
        0x00404025: "K",  # Scheduled Station Name Code Sequence
        0x00404027: "K",  # Scheduled Station Geographic Location Code Sequence
        0x00404028: "K",  # Performed Station Name Code Sequence
        0x00404030: "K",  # Performed Station Geographic Location Code Sequence
        0x00500020: "K",  # Device Description
        0x0072005E: "C",  # Selector AE Value
        0x00741234: "C",  # Receiving AE
        0x00741236: "C",  # Requesting AE
        0x04000563: "K",  # Modifying System
        0x21000070: "C",  # Originator
        0x21000140: "C",  # Destination AE
        0x30080105: "K",  # Source Serial Number
        0x300A00B2: "K",  # Treatment Machine Name
        0x300A0216: "K",  # Source Manufacturer
        0x300C0127: "K",  # Beam Hold Transition DateTime
        0x3010002D: "K",  # Device Label
        0x30100043: "K",  # Manufacturer's Device Identifier
    },
    "rtnUIDsOpt": {
        0x00001000: "K",  # Affected SOP Instance UID
        0x00001001: "K",  # Requested SOP Instance UID
        0x00020003: "K",  # Media Storage SOP Instance UID
        0x00041511: "K",  # Referenced SOP Instance UID in File
        0x00080014: "K",  # Instance Creator UID
        0x00080017: "K",  # Acquisition UID
        0x00080018: "K",  # SOP Instance UID
        0x00080019: "K",  # Pyramid UID
        0x00080058: "K",  # Failed SOP Instance UID List
        0x00081110: "K",  # Referenced Study Sequence
        0x00081111: "K",  # Referenced Performed Procedure Step Sequence
        0x00081120: "K",  # Referenced Patient Sequence
        0x00081140: "K",  # Referenced Image Sequence
        0x00081155: "K",  # Referenced SOP Instance UID
        0x00081195: "K",  # Transaction UID
        0x00082112: "K",  # Source Image Sequence
        0x00083010: "K",  # Irradiation Event UID
        0x00181002: "K",  # Device UID
        0x0018100B: "K",  # Manufacturer's Device Class UID
        0x00182042: "K",  # Target UID
        0x0020000D: "K",  # Study Instance UID
        0x0020000E: "K",  # Series Instance UID
        0x00200052: "K",  # Frame of Reference UID
        0x00200200: "K",  # Synchronization Frame of Reference UID
        0x00209161: "K",  # Concatenation UID
        0x00209164: "K",  # Dimension Organization UID
        0x00281199: "K",  # Palette Color Lookup Table UID
        0x00281214: "K",  # Large Palette Color Lookup Table UID
        0x003A0310: "K",  # Multiplex Group UID
        0x00400554: "K",  # Specimen UID
        0x00404023: "K",  # Referenced General Purpose Scheduled Procedure Step Transaction UID
        0x0040A171: "K",  # Observation UID
        0x0040A172: "K",  # Referenced Observation UID (Trial)
        0x0040A402: "K",  # Observation Subject UID (Trial)
        0x0040DB0C: "K",  # Template Extension Organization UID
        0x0040DB0D: "K",  # Template Extension Creator UID
        0x00620021: "K",  # Tracking UID
        0x00640003: "K",  # Source Frame of Reference UID
        0x006A0003: "K",  # Annotation Group UID
        0x0070031A: "K",  # Fiducial UID
        0x00701101: "K",  # Presentation Display Collection UID
        0x00701102: "K",  # Presentation Sequence Collection UID
        0x00880140: "K",  # Storage Media File-set UID
        0x30060024: "K",  # Referenced Frame of Reference UID
        0x300600C2: "K",  # Related Frame of Reference UID
        0x300A0013: "K",  # Dose Reference UID
        0x300A0083: "K",  # Referenced Dose Reference UID
        0x300A0609: "K",  # Treatment Position Group UID
        0x300A0650: "K",  # Patient Setup UID
        0x300A0700: "K",  # Treatment Session UID
        0x300A0785: "K",  # Referenced Treatment Position Group UID
        0x30100006: "K",  # Conceptual Volume UID
        0x3010000B: "K",  # Referenced Conceptual Volume UID
        0x30100013: "K",  # Constituent Conceptual Volume UID
        0x30100015: "K",  # Source Conceptual Volume UID
        0x30100031: "K",  # Referenced Fiducials UID
        0x3010003B: "K",  # RT Treatment Phase UID
        0x3010006E: "K",  # Dosimetric Objective UID
        0x3010006F: "K",  # Referenced Dosimetric Objective UID
    },
    "rtnInstIdOpt": {
        0x00080080: "K",  # Institution Name
        0x00080081: "K",  # Institution Address
        0x00080082: "K",  # Institution Code Sequence
        0x00081040: "K",  # Institutional Department Name
        0x00081041: "K",  # Institutional Department Type Code Sequence
        0x00120030: "K",  # Clinical Trial Site ID
        0x00120031: "K",  # Clinical Trial Site Name
        0x00120060: "K",  # Clinical Trial Coordinating Center Name
        0x00120081: "K",  # Clinical Trial Protocol Ethics Committee Name
        0x04000564: "K",  # Source of Previous Values
    },
    "cleanDescOpt": {
        0x00081030: "C",  # Study Description
        0x0008103E: "C",  # Series Description
        0x00081080: "C",  # Admitting Diagnoses Description
        0x00081084: "C",  # Admitting Diagnoses Code Sequence
        0x00081088: "C",  # Pyramid Description
        0x00082111: "C",  # Derivation Description
        0x00084000: "C",  # Identifying Comments
        0x00102000: "C",  # Medical Alerts
        0x00102110: "C",  # Allergies
        0x00102180: "C",  # Occupation
        0x001021B0: "C",  # Additional Patient History
        0x00104000: "C",  # Patient Comments
        0x00120051: "C",  # Clinical Trial Time Point Description
        0x00120072: "C",  # Clinical Trial Series Description
        0x0016002B: "C",  # Maker Note
        0x0016004B: "C",  # Device Setting Description
        0x00180010: "C",  # Contrast/Bolus Agent
        0x00181030: "C",  # Protocol Name
        0x001811BB: "C",  # Acquisition Field Of View Label
        0x00181400: "C",  # Acquisition Device Processing Description
        0x00184000: "C",  # Acquisition Comments
        0x00189185: "C",  # Respiratory Motion Compensation Technique Description
        0x0018937B: "C",  # Multi-energy Acquisition Description
        0x0018937F: "C",  # Decomposition Description
        0x00189424: "C",  # Acquisition Protocol Description
        0x00189937: "C",  # Requested Series Description
        0x0018A003: "C",  # Contribution Description
        0x00200027: "C",  # Pyramid Label
        0x00204000: "C",  # Image Comments
        0x00209158: "C",  # Frame Comments
        0x00321030: "C",  # Reason for Study
        0x00321060: "C",  # Requested Procedure Description
        0x00321066: "C",  # Reason for Visit
        0x00321067: "C",  # Reason for Visit Code Sequence
        0x00321070: "C",  # Requested Contrast Agent
        0x00324000: "C",  # Study Comments
        0x00380040: "C",  # Discharge Diagnosis Description
        0x00380062: "C",  # Service Episode Description
        0x00380500: "C",  # Patient State
        0x00384000: "C",  # Visit Comments
        0x003A0329: "C",  # Waveform Filter Description
        0x003A032B: "C",  # Filter Lookup Table Description
        0x00400007: "C",  # Scheduled Procedure Step Description
        0x00400254: "C",  # Performed Procedure Step Description
        0x00400275: "C",  # Request Attributes Sequence
        0x00400280: "C",  # Comments on the Performed Procedure Step
        0x00400310: "C",  # Comments on Radiation Dose
        0x0040051A: "C",  # Container Description
        0x00400600: "C",  # Specimen Short Description
        0x00400602: "C",  # Specimen Detailed Description
        0x00401002: "C",  # Reason for the Requested Procedure
        0x0040100A: "C",  # Reason for Requested Procedure Code Sequence
        0x00401400: "C",  # Requested Procedure Comments
        0x00402001: "C",  # Reason for the Imaging Service Request
        0x00402400: "C",  # Imaging Service Request Comments
        0x00500021: "C",  # Long Device Description
        0x006A0005: "C",  # Annotation Group Label
        0x006A0006: "C",  # Annotation Group Description
        0x00720066: "C",  # Selector LO Value
        0x00720068: "C",  # Selector LT Value
        0x0072006C: "C",  # Selector SH Value
        0x0072006E: "C",  # Selector ST Value
        0x00720070: "C",  # Selector UT Value
        0x04000565: "C",  # Reason for the Attribute Modification
        0x22000002: "C",  # Label Text
        0x30020121: "C",  # Position Acquisition Template Name
        0x30020123: "C",  # Position Acquisition Template Description
        0x30060002: "C",  # Structure Set Label
        0x30060004: "C",  # Structure Set Name
        0x30060006: "C",  # Structure Set Description
        0x30060026: "C",  # ROI Name
        0x30060028: "C",  # ROI Description
        0x30060038: "C",  # ROI Generation Description
        0x30060085: "C",  # ROI Observation Label
        0x30060088: "C",  # ROI Observation Description
        0x300A0002: "C",  # RT Plan Label
        0x300A0003: "C",  # RT Plan Name
        0x300A0004: "C",  # RT Plan Description
        0x300A000B: "C",  # Treatment Sites
        0x300A000E: "C",  # Prescription Description
        0x300A0016: "C",  # Dose Reference Description
        0x300A0072: "C",  # Fraction Group Description
        0x300A00C3: "C",  # Beam Description
        0x300A00DD: "C",  # Bolus Description
        0x300A0196: "C",  # Fixation Device Description
        0x300A01A6: "C",  # Shielding Device Description
        0x300A01B2: "C",  # Setup Technique Description
        0x300A02EB: "C",  # Compensator Description
        0x300A0608: "C",  # Treatment Position Group Label
        0x300A0619: "C",  # Radiation Dose Identification Label
        0x300A0623: "C",  # Radiation Dose In-Vivo Measurement Label
        0x300A062A: "C",  # RT Tolerance Set Label
        0x300A0676: "C",  # Equipment Frame of Reference Description
        0x300A067C: "C",  # Radiation Generation Mode Label
        0x300A067D: "C",  # Radiation Generation Mode Description
        0x300A0734: "C",  # Treatment Tolerance Violation Description
        0x300A0742: "C",  # Interlock Description
        0x300A0783: "C",  # Interlock Origin Description
        0x300A078E: "C",  # Patient Treatment Preparation Procedure Parameter Description
        0x300A0792: "C",  # Patient Treatment Preparation Method Description
        0x300A0794: "C",  # Patient Setup Photo Description
        0x300A079A: "C",  # Displacement Reference Label
        0x300C0113: "C",  # Reason for Omission Description
        0x3010000F: "C",  # Conceptual Volume Combination Description
        0x30100017: "C",  # Conceptual Volume Description
        0x30100033: "C",  # User Content Label
        0x30100034: "C",  # User Content Long Label
        0x30100035: "C",  # Entity Label
        0x30100036: "C",  # Entity Name
        0x30100037: "C",  # Entity Description
        0x30100038: "C",  # Entity Long Label
        0x30100054: "C",  # RT Prescription Label
        0x30100056: "C",  # RT Treatment Approach Label
        0x3010005A: "C",  # RT Physician Intent Narrative
        0x3010005C: "C",  # Reason for Superseding
        0x30100061: "C",  # Prior Treatment Dose Description
        0x30100077: "C",  # Treatment Site
        0x3010007A: "C",  # Treatment Technique Notes
        0x3010007B: "C",  # Prescription Notes
        0x3010007F: "C",  # Fractionation Notes
        0x30100081: "C",  # Prescription Notes Sequence
        0x4008010B: "C",  # Interpretation Text
        0x40080115: "C",  # Interpretation Diagnosis Description
        0x40080300: "C",  # Impressions
        0x40084000: "C",  # Results Comments
    },
    "cleanStructContOpt": {
        0x00400555: "C",  # Acquisition Context Sequence
        0x00400610: "C",  # Specimen Preparation Sequence
        0x0040A730: "C",  # Content Sequence
    },
    "cleanGraphOpt": {
        0x00700001: "C",  # Graphic Annotation Sequence
    },
}
OPTION_REPEATING_GROUPS: dict[str, dict[int, str]] = {
    "cleanGraphOpt": {0x50000000: "C", 0x60003000: "C", 0x60004000: "C"},  # Curve Data, Overlay Data, Overlay Comments
}

# PS3.15 Table E.3.10-1, Safe Private Attributes (a sample list the standard gives; vendors do not
# guarantee it): (private creator, group, element within the block). Transcribed from PS3.15 2020
# (the reStructuredText rendering in chsasank/dicom_standard, source/part15/chapter_E.rst).
SAFE_PRIVATE: frozenset[tuple[str, int, int]] = frozenset({
    ("Philips PET Private Group", 0x7053, 0x00),  # DS
    ("Philips PET Private Group", 0x7053, 0x09),  # DS
    ("ELSCINT1", 0x00E1, 0x21),  # DS
    ("ELSCINT1", 0x00E1, 0x50),  # DS
    ("ELSCINT1", 0x01E1, 0x26),  # CS
    ("ELSCINT1", 0x01F1, 0x01),  # CS
    ("ELSCINT1", 0x01F1, 0x07),  # DS
    ("ELSCINT1", 0x01F1, 0x26),  # DS
    ("ELSCINT1", 0x01F1, 0x27),  # DS
    ("GEMS_ACQU_01", 0x0019, 0x23),  # DS
    ("GEMS_ACQU_01", 0x0019, 0x24),  # DS
    ("GEMS_ACQU_01", 0x0019, 0x27),  # DS
    ("GEMS_ACQU_01", 0x0019, 0x9E),  # LO
    ("GEMS_PARM_01", 0x0043, 0x27),  # SH
    ("GEMS_HELIOS_01", 0x0045, 0x01),  # SS
    ("GEMS_HELIOS_01", 0x0045, 0x02),  # FL
    ("GEIIS PACS", 0x0903, 0x10),  # US
    ("GEIIS PACS", 0x0903, 0x11),  # US
    ("GEIIS PACS", 0x0903, 0x12),  # US
    ("Philips Imaging DD 001", 0x2001, 0x03),  # FL
    ("Philips Imaging DD 001", 0x2001, 0x04),  # CS
    ("SIEMENS MR HEADER", 0x0019, 0x0C),  # IS
    ("SIEMENS MR HEADER", 0x0019, 0x0D),  # CS
    ("SIEMENS MR HEADER", 0x0019, 0x0E),  # FD
    ("SIEMENS MR HEADER", 0x0019, 0x27),  # FD
    ("GEMS_PARM_01", 0x0043, 0x39),  # IS
    ("GEMS_PARM_01", 0x0043, 0x6F),  # DS
    ("GEMS_SERS_01", 0x0025, 0x07),  # SL
    ("HOLOGIC, Inc.", 0x7E01, 0x01),  # LO
    ("HOLOGIC, Inc.", 0x7E01, 0x02),  # SH
    ("HOLOGIC, Inc.", 0x7E01, 0x10),  # SQ
    ("HOLOGIC, Inc.", 0x7E01, 0x11),  # SQ
    ("HOLOGIC, Inc.", 0x7E01, 0x12),  # OB
    ("NQHeader", 0x0099, 0x01),  # UI
    ("NQHeader", 0x0099, 0x02),  # UI
    ("NQHeader", 0x0099, 0x04),  # SS
    ("NQHeader", 0x0099, 0x05),  # LT
    ("NQHeader", 0x0099, 0x10),  # FL
    ("NQHeader", 0x0099, 0x20),  # SH
    ("NQHeader", 0x0099, 0x21),  # FL
    ("NQLeft", 0x0199, 0x01),  # FL
    ("NQLeft", 0x0199, 0x02),  # FL
    ("NQLeft", 0x0199, 0x03),  # FL
    ("NQLeft", 0x0199, 0x04),  # FL
    ("NQLeft", 0x0199, 0x05),  # FL
    ("NQLeft", 0x0199, 0x06),  # FL
    ("NQLeft", 0x0199, 0x07),  # FL
    ("NQLeft", 0x0199, 0x08),  # FL
    ("NQLeft", 0x0199, 0x09),  # FL
    ("NQLeft", 0x0199, 0x0A),  # FL
    ("NQLeft", 0x0199, 0x0B),  # FL
    ("NQLeft", 0x0199, 0x0C),  # FL
    ("NQLeft", 0x0199, 0x0D),  # FL
    ("NQLeft", 0x0199, 0x0E),  # FL
    ("NQLeft", 0x0199, 0x0F),  # FL
    ("NQLeft", 0x0199, 0x10),  # FL
    ("NQLeft", 0x0199, 0x11),  # FL
    ("NQLeft", 0x0199, 0x12),  # FL
    ("NQLeft", 0x0199, 0x13),  # FL
    ("NQLeft", 0x0199, 0x14),  # FL
    ("NQLeft", 0x0199, 0x15),  # FL
    ("NQLeft", 0x0199, 0x16),  # FL
    ("NQRight", 0x0299, 0x01),  # FL
    ("NQRight", 0x0299, 0x02),  # FL
    ("NQRight", 0x0299, 0x03),  # FL
    ("NQRight", 0x0299, 0x04),  # FL
    ("NQRight", 0x0299, 0x05),  # FL
    ("NQRight", 0x0299, 0x06),  # FL
    ("NQRight", 0x0299, 0x07),  # FL
    ("NQRight", 0x0299, 0x08),  # FL
    ("NQRight", 0x0299, 0x09),  # FL
    ("NQRight", 0x0299, 0x0A),  # FL
    ("NQRight", 0x0299, 0x0B),  # FL
    ("NQRight", 0x0299, 0x0C),  # FL
    ("NQRight", 0x0299, 0x0D),  # FL
    ("NQRight", 0x0299, 0x0E),  # FL
    ("NQRight", 0x0299, 0x0F),  # FL
    ("NQRight", 0x0299, 0x10),  # FL
    ("NQRight", 0x0299, 0x11),  # FL
    ("NQRight", 0x0299, 0x12),  # FL
    ("NQRight", 0x0299, 0x13),  # FL
    ("NQRight", 0x0299, 0x14),  # FL
    ("NQRight", 0x0299, 0x15),  # FL
    ("NQRight", 0x0299, 0x16),  # FL
    ("Philips MR Imaging DD 001", 0x2005, 0x0D),  # FL
    ("Philips MR Imaging DD 001", 0x2005, 0x0E),  # FL
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x00),  # LO
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x01),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x02),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x03),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x04),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x05),  # UL
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x06),  # UL
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x07),  # UL
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x08),  # UL
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x09),  # SS
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x10),  # SH
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x11),  # -
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x12),  # -
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x13),  # IS
    ("SIEMENS Ultrasound SC2000", 0x0119, 0x21),  # SH
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x00),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x02),  # UI
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x03),  # -
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x04),  # -
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x05),  # -
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x06),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x07),  # UI
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x08),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x09),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x10),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x11),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x12),  # UI
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x20),  # SQ
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x21),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x22),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x29),  # OB
    ("SIEMENS Ultrasound SC2000", 0x0129, 0x30),  # CS
    ("SIEMENS Ultrasound SC2000", 0x0139, 0x01),  # SL
    ("SIEMENS Ultrasound SC2000", 0x0149, 0x01),  # FD
    ("SIEMENS Ultrasound SC2000", 0x0149, 0x02),  # FD
    ("SIEMENS Ultrasound SC2000", 0x0149, 0x03),  # FD
    ("SIEMENS Ultrasound SC2000", 0x7FD1, 0x01),  # OB
    ("SIEMENS Ultrasound SC2000", 0x7FD1, 0x09),  # UI
    ("SIEMENS Ultrasound SC2000", 0x7FD1, 0x10),  # OB
    ("SIEMENS Ultrasound SC2000", 0x7FD1, 0x11),  # OB
    ("SIEMENS SYNGO ULTRA-SOUND TOYON DATA STREAMING", 0x7FD1, 0x01),  # OB
    ("SIEMENS SYNGO ULTRA-SOUND TOYON DATA STREAMING", 0x7FD1, 0x09),  # UI
    ("SIEMENS SYNGO ULTRA-SOUND TOYON DATA STREAMING", 0x7FD1, 0x10),  # OB
    ("SIEMENS SYNGO ULTRA-SOUND TOYON DATA STREAMING", 0x7FD1, 0x11),  # OB
})

"""Build the PDF and DOCX sample documents of Brindlemoss Growtech.

The text of the four binary documents lives in this file, so that they can be
reviewed and regenerated:

    documents/product-catalog.pdf      (fpdf2, core font Helvetica)
    documents/warranty-policy.pdf      (fpdf2, core font Helvetica)
    documents/installation-guide.docx  (python-docx, Heading 1 / Heading 2)
    documents/seasonal-care-guide.docx (python-docx, Heading 1 / Heading 2)

Usage (from the repository root):

    .venv/bin/python sample_data/build_documents.py

Each document is a list of blocks: ("h1", text), ("h2", text), ("p", text) or
("list", [items]). The PDF texts stay within latin-1 (core fonts cannot draw
other characters), which is why they write "EUR" instead of the euro sign.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from docx import Document
from fpdf import FPDF

DOCUMENTS_DIR = Path(__file__).resolve().parent / "documents"
FIXED_DATE = dt.datetime(2025, 3, 1, 9, 0, 0, tzinfo=dt.timezone.utc)

Block = tuple[str, "str | list[str]"]

# ---------------------------------------------------------------------------
# product-catalog.pdf
# ---------------------------------------------------------------------------

PRODUCT_CATALOG: list[Block] = [
    ("h1", "Brindlemoss Product Catalog 2025"),
    ("p", "Smart sensors and irrigation controllers for gardens, balconies and greenhouses. "
          "All prices are in euros and include 21% Dutch VAT. Prices are valid from 1 March 2025 "
          "until the next edition of this catalog. Warranty periods are described in our "
          "warranty policy."),
    ("h2", "SoilSense S2 - soil moisture and temperature sensor"),
    ("p", "Model number: BM-S200. Price: EUR 39.90."),
    ("p", "The SoilSense S2 measures soil moisture (volumetric water content) and soil "
          "temperature in the root zone. It is our most popular sensor for beds, borders and "
          "large pots."),
    ("list", ["Probe length: 11 cm, with a green depth line",
              "Power: 2 x AA batteries, battery life about 14 months at the default "
              "15-minute reading interval",
              "Protection: IP67 (dust tight, can be submerged briefly)",
              "Radio range to the hub: up to 120 m in open air"]),
    ("h2", "SoilSense S3 Pro - soil moisture, temperature and fertiliser (EC) sensor"),
    ("p", "Model number: BM-S310. Price: EUR 64.00."),
    ("p", "The SoilSense S3 Pro adds an electrical conductivity (EC) measurement to moisture and "
          "temperature, so you can see when your plants need feeding and when salts build up. "
          "Made for vegetable gardens, greenhouses and fruit growers."),
    ("list", ["EC range: 0 to 5 mS/cm",
              "Probe length: 15 cm, stainless steel",
              "Power: 2 x AA batteries (lithium recommended), battery life about 10 months",
              "Protection: IP68 (can stay submerged)"]),
    ("h2", "AirSense Leaf - climate and light sensor"),
    ("p", "Model number: BM-A120. Price: EUR 49.50."),
    ("p", "The AirSense Leaf measures air temperature, relative humidity and light level. Use it "
          "in a greenhouse to control the GreenVent Opener, or outdoors for frost alerts."),
    ("list", ["Air temperature: -30 to +60 \u00b0C; light level: 0 to 120,000 lux",
              "Power: one CR2477 coin cell battery, battery life about 18 months",
              "Protection: IP65; mounts on the included stake or on a wall"]),
    ("h2", "Brindlemoss Hub H1"),
    ("p", "Model number: BM-H100. Price: EUR 89.00."),
    ("p", "The Hub H1 connects your Brindlemoss devices to the Brindlemoss Grow app. It talks to "
          "the devices over MossLink, our long-range 868 MHz radio, and to the internet over "
          "Wi-Fi or Ethernet."),
    ("list", ["Connects up to 32 Brindlemoss devices (sensors, controllers and openers)",
              "Wi-Fi 2.4 GHz (802.11 b/g/n) or Ethernet port",
              "Power: USB-C, 5 V adapter included",
              "Indoor use only, operating temperature 0 to 40 \u00b0C"]),
    ("h2", "FlowMate 4 - irrigation controller"),
    ("p", "Model number: BM-F400. Price: EUR 149.00."),
    ("p", "The FlowMate 4 controls up to 4 irrigation zones with standard 24 V AC solenoid valves "
          "and waters by schedule, by soil moisture or both."),
    ("list", ["4 zones, expandable to 12 zones with up to 2 Zone Expander ZX4 modules",
              "Input for an optional flow sensor",
              "2.4 inch backlit display and buttons for use without the app",
              "Housing IP44 for a sheltered outdoor spot; 24 V AC transformer included"]),
    ("h2", "FlowMate 8 - irrigation controller"),
    ("p", "Model number: BM-F800. Price: EUR 219.00."),
    ("p", "The FlowMate 8 offers the same features as the FlowMate 4 with 8 zones, for larger "
          "gardens and allotments. It can be expanded to 16 zones with up to 2 Zone Expander "
          "ZX4 modules."),
    ("h2", "Zone Expander ZX4"),
    ("p", "Model number: BM-X040. Price: EUR 59.00."),
    ("p", "Adds 4 zones to a FlowMate 4 or FlowMate 8. The module plugs into the expansion slot "
          "behind the front cover; no soldering or extra power supply is needed. A maximum of 2 "
          "Zone Expanders can be used per controller."),
    ("h2", "TapValve T1 - smart tap timer"),
    ("p", "Model number: BM-T110. Price: EUR 54.90."),
    ("p", "The TapValve T1 turns any outdoor tap into a smart watering point, for a hose, "
          "sprinkler or drip line. It works offline with its last schedule when the hub is out "
          "of reach."),
    ("list", ["Fits taps with a 3/4 inch (26.4 mm) thread; adapter for 1/2 inch taps included",
              "Maximum flow 30 litres per minute, water pressure 0.5 to 8 bar",
              "Power: 4 x AA batteries, which last about one gardening season"]),
    ("h2", "GreenVent Opener V2 - greenhouse window opener"),
    ("p", "Model number: BM-V220. Price: EUR 129.00."),
    ("p", "A motorised window opener that opens and closes your greenhouse window based on the "
          "temperature. Solar powered with a 3 W panel and a built-in battery, so no wiring is "
          "needed."),
    ("list", ["Opening stroke up to 45 cm",
              "Lifts windows weighing up to 12 kg",
              "Works with most aluminium and wooden greenhouse windows"]),
    ("h2", "Balcony Starter Kit"),
    ("p", "Model number: BM-K010. Price: EUR 169.00."),
    ("p", "Everything you need to start: one Hub H1, two SoilSense S2 sensors and one TapValve "
          "T1. Bought separately these products cost EUR 223.70, so the kit saves you EUR 54.70."),
    ("h2", "Accessories"),
    ("list", ["Calibration Solution CS-50, pack of 10 sachets (1.413 mS/cm): EUR 12.90",
              "Drip tubing 16 mm, roll of 25 m: EUR 18.50",
              "Drip tubing 16 mm, cut to a custom length: EUR 0.95 per metre",
              "Spare probe tip for SoilSense S2 and S3 Pro: EUR 9.50",
              "USB-C power adapter 5 V for the Hub H1: EUR 12.00",
              "Extra mounting stake for the AirSense Leaf: EUR 6.50"]),
]

# ---------------------------------------------------------------------------
# warranty-policy.pdf
# ---------------------------------------------------------------------------

WARRANTY_POLICY: list[Block] = [
    ("h1", "Brindlemoss Warranty Policy"),
    ("p", "Effective from 1 March 2024. Brindlemoss Growtech B.V. gives a manufacturer's "
          "warranty on all products sold through brindlemoss.nl, the Brindlemoss Grow app, our "
          "Deventer showroom and authorised garden centres. This warranty comes in addition to "
          "your statutory rights under EU consumer law, which it does not limit."),
    ("h2", "Warranty periods"),
    ("p", "The warranty period starts on the delivery date of the product."),
    ("list", ["FlowMate 4, FlowMate 8 and Zone Expander ZX4: 5 years",
              "Hub H1, SoilSense S2, SoilSense S3 Pro and AirSense Leaf: 3 years",
              "TapValve T1 and GreenVent Opener V2: 2 years",
              "Accessories and power adapters: 2 years"]),
    ("h2", "What the warranty covers"),
    ("p", "The warranty covers defects in materials and workmanship that appear during normal "
          "use, such as a sensor that stops sending readings, a controller zone that no longer "
          "switches or a broken display. We will repair the product, replace it with the same or "
          "an equivalent product, or, if neither is possible, refund the purchase price."),
    ("h2", "What the warranty does not cover"),
    ("list", ["Batteries (AA batteries and coin cells); the built-in battery of the GreenVent "
              "Opener V2 is covered for the first 12 months only",
              "Normal wear of probe tips",
              "Frost damage caused by water freezing inside a TapValve T1 or a valve",
              "Corrosion of probes caused by direct contact with undiluted fertiliser",
              "Damage from using a FlowMate with valves other than 24 V AC solenoid valves",
              "Devices that have been opened or modified, except for the battery compartment",
              "Cosmetic scratches and fading that do not affect how the product works"]),
    ("h2", "How to make a warranty claim"),
    ("p", "Start your claim at warranty.brindlemoss.nl or contact our support team. Please have "
          "ready: the serial number of the device (on the label on the back, for example "
          "BM-F400-204817), your order number starting with BMO- or another proof of purchase, "
          "and a description of the problem with a photo or short video. Many problems can be "
          "solved remotely, so we may ask you to send a diagnostic log from the app first."),
    ("p", "Shipping for warranty claims is free in both directions for all countries we ship to. "
          "We aim to repair or replace your product within 10 business days after it arrives at "
          "our warehouse in Apeldoorn."),
    ("h2", "Advance replacement"),
    ("p", "Growers Circle Evergreen members and CarePlus customers receive advance replacement: "
          "we ship the replacement device before you send back the faulty one. Please return the "
          "faulty device within 14 days of receiving the replacement, otherwise we charge the "
          "price of the replacement."),
    ("h2", "CarePlus extended warranty"),
    ("p", "CarePlus adds 2 extra years to the warranty period of a device. It costs EUR 19 per "
          "device, or EUR 29 for a FlowMate 4 or FlowMate 8. CarePlus must be bought within 60 "
          "days of the delivery date, in the app or on brindlemoss.nl."),
    ("p", "CarePlus also covers one repair of accidental damage during its term, for example a "
          "sensor hit by a lawnmower, with an excess of EUR 15."),
    ("h2", "Replacement devices and change of owner"),
    ("p", "A repaired or replacement device is covered for the rest of the original warranty "
          "period or for 6 months, whichever is longer. If you sell or give away a Brindlemoss "
          "device, the warranty and any CarePlus cover transfer to the new owner together with "
          "the original proof of purchase."),
]

# ---------------------------------------------------------------------------
# installation-guide.docx
# ---------------------------------------------------------------------------

INSTALLATION_GUIDE: list[Block] = [
    ("h1", "Brindlemoss Installation Guide"),
    ("p", "This guide takes you step by step through setting up a Brindlemoss system: the Hub "
          "H1, soil and climate sensors, the FlowMate irrigation controller and the GreenVent "
          "Opener V2. A basic system with a hub and two sensors is ready in about 20 minutes."),
    ("h2", "Before you start"),
    ("list", ["Install the Brindlemoss Grow app and create an account.",
              "Make sure you know the name and password of your 2.4 GHz Wi-Fi network.",
              "Tools: a Phillips screwdriver; for the FlowMate also a small flat screwdriver and "
              "wire strippers; for the GreenVent Opener a 10 mm spanner."]),
    ("h2", "Step 1: Set up the Hub H1"),
    ("p", "Place the hub indoors, as close to the garden as possible, for example on a window sill "
          "on the garden side of your home. Through walls the hub reaches sensors up to about "
          "40 m away. Plug in the USB-C power adapter; the LED blinks white. In the app, tap "
          "\"+\" > Add hub and scan the QR code on the underside of the hub. The app connects the "
          "hub to your Wi-Fi network and installs the latest firmware, which takes about 3 "
          "minutes."),
    ("h2", "Step 2: Pair your sensors and devices"),
    ("p", "Insert the batteries, then press and hold the button on the device for 3 seconds "
          "until the LED blinks blue slowly. The device is now in pairing mode, which lasts 5 "
          "minutes. In the app, tap \"+\" > Add device and follow the instructions. Give every "
          "device a clear name, such as \"Tomato bed\" or \"Front lawn\"."),
    ("h2", "Step 3: Place the soil sensors"),
    ("p", "Push the SoilSense probe vertically into the soil until the green line on the probe "
          "is level with the soil surface. Place it about 10 cm from the stem of the plant, in "
          "the root zone. Keep at least 20 cm distance from drip emitters and sprinklers, so the "
          "sensor measures the bed and not the wet spot under the dripper. In a lawn, place the "
          "sensor at least 1 m from the edge. Water the soil around the sensor after inserting "
          "it, to close any air gaps."),
    ("h2", "Step 4: Mount the AirSense Leaf"),
    ("p", "Mount the AirSense Leaf 1.2 to 1.5 m above the ground, out of direct sunlight, "
          "because sunshine on the housing makes the temperature reading too high. In a "
          "greenhouse, the north side is usually the best spot."),
    ("h2", "Step 5: Wire the FlowMate controller"),
    ("p", "Mount the FlowMate on a wall within 1.5 m of a power socket, in a sheltered spot out "
          "of direct rain. Connect the common wire of every valve to the C terminal and the "
          "other wire of each valve to its zone terminal (Z1 to Z4, or Z1 to Z8). With 0.8 mm\u00b2 "
          "cable the distance from controller to valve can be up to 150 m; for longer runs, up "
          "to 300 m, use 1.5 mm\u00b2 cable. Connect an optional flow sensor to the FS terminals. "
          "Plug in the 24 V AC transformer, then add the FlowMate in the app as in step 2."),
    ("h2", "Step 6: Install the GreenVent Opener V2"),
    ("p", "Fix the opener to the window frame with the four M6 bolts included in the box, and "
          "mount the solar panel facing south. By default the window opens at 26 \u00b0C and "
          "closes again when the temperature falls 2 degrees below that, at 24 \u00b0C. You can "
          "change both temperatures in the app."),
    ("h2", "Step 7: Calibrate the soil probes"),
    ("p", "For the most accurate readings, run the \"Calibrate probe\" wizard in the app. Hold "
          "the probe in dry air, then in a glass of tap water, and follow the instructions. "
          "Calibration takes about 90 seconds per sensor. We recommend calibrating every "
          "SoilSense S3 Pro before first use."),
    ("h2", "Step 8: Create your first schedule"),
    ("p", "Open the \"Smart Start\" wizard from the garden screen. Choose your plant types and "
          "soil type (sand, loam or clay) for each zone, and Smart Start creates a watering "
          "schedule with moisture targets that you can adjust later."),
]

# ---------------------------------------------------------------------------
# seasonal-care-guide.docx
# ---------------------------------------------------------------------------

SEASONAL_CARE_GUIDE: list[Block] = [
    ("h1", "Brindlemoss Seasonal Care Guide"),
    ("p", "A little care through the seasons keeps your Brindlemoss system accurate and reliable "
          "for many years. This guide tells you what to do in spring, summer, autumn and winter."),
    ("h2", "Spring: waking up your system"),
    ("p", "Run the \"Spring Check\" in the app (Garden > Spring Check). It opens each zone for 30 "
          "seconds, so you can walk around and check for leaks and blocked drippers, and it "
          "checks the battery level of every device. Replace batteries that are below 40%, so "
          "they last through the summer."),
    ("p", "Lubricate the hinge and arm of the GreenVent Opener V2 with silicone spray. Do not use "
          "oil or grease, because they attract dirt and dust."),
    ("h2", "Summer: heat waves and dry spells"),
    ("p", "Switch on \"Heat boost\" for zones with sensitive plants. When an AirSense Leaf "
          "measures more than 30 \u00b0C, Heat boost adds an extra 5-minute watering at 14:00. "
          "Clean the filter at the tap once a month in summer, because a clogged filter reduces "
          "the water flow to your drippers."),
    ("h2", "Autumn: less water"),
    ("p", "Plants need less water when it gets colder. The app switches to Autumn mode "
          "automatically when the soil temperature stays below 10 \u00b0C for 7 days in a row. "
          "Autumn mode shortens all watering runs by 30%. You can switch it off in the garden "
          "settings."),
    ("h2", "Winter: protecting against frost"),
    ("p", "Before the first frost, turn off the water supply and use the \"Drain\" function in "
          "the app, which opens each zone for 2 minutes to release the pressure and let the "
          "water run out of the pipes and valves."),
    ("p", "Bring the TapValve T1 indoors as soon as night temperatures below 2 \u00b0C are "
          "forecast, and remove its batteries before storing it. The FlowMate controller can "
          "stay on the wall: set it to \"Winter pause\" to keep all settings without watering "
          "until you resume it in spring."),
    ("p", "SoilSense sensors can stay in the ground through the winter down to -20 \u00b0C. If "
          "you live in an area where it gets colder, take them out and store them indoors."),
    ("h2", "Batteries"),
    ("p", "In winter, use lithium AA batteries in your sensors: alkaline batteries lose much of "
          "their capacity below 0 \u00b0C. We do not recommend rechargeable NiMH batteries, "
          "because their lower voltage makes the battery level in the app inaccurate. You can "
          "send used batteries back to us for recycling."),
    ("h2", "Probe care"),
    ("p", "Clean the probes of your soil sensors every 3 months with a soft brush and distilled "
          "water. Never use vinegar, cleaning products or scouring pads, which damage the coating "
          "of the probe. Recalibrate the EC measurement of the SoilSense S3 Pro every 6 months "
          "with a sachet of Calibration Solution CS-50; the app guides you through it under "
          "Devices > (sensor) > Calibrate EC."),
    ("h2", "Storing devices"),
    ("p", "Store devices you are not using in a dry place indoors at 5 to 25 \u00b0C, with the "
          "batteries removed. Keep the protective cap on the probes of stored soil sensors."),
]


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def write_pdf(blocks: list[Block], path: Path, title: str) -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("Brindlemoss Growtech B.V.")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    def cell(text: str, size: int, style: str = "", height: float = 6.0) -> None:
        text.encode("latin-1")  # core fonts only draw latin-1 characters
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")

    for kind, content in blocks:
        if kind == "h1":
            cell(str(content), 20, "B", 10)
            pdf.ln(4)
        elif kind == "h2":
            pdf.ln(3)
            cell(str(content), 14, "B", 8)
            pdf.ln(1)
        elif kind == "p":
            cell(str(content), 11)
            pdf.ln(2)
        elif kind == "list":
            for item in content:
                cell(f"- {item}", 11)
            pdf.ln(2)
        else:
            raise ValueError(f"unknown block kind: {kind}")

    pdf.output(str(path))


def write_docx(blocks: list[Block], path: Path, title: str) -> None:
    document = Document()
    document.core_properties.title = title
    document.core_properties.author = "Brindlemoss Growtech B.V."
    document.core_properties.created = FIXED_DATE.replace(tzinfo=None)
    document.core_properties.modified = FIXED_DATE.replace(tzinfo=None)

    for kind, content in blocks:
        if kind == "h1":
            document.add_heading(str(content), level=1)
        elif kind == "h2":
            document.add_heading(str(content), level=2)
        elif kind == "p":
            document.add_paragraph(str(content))
        elif kind == "list":
            for item in content:
                document.add_paragraph(item, style="List Bullet")
        else:
            raise ValueError(f"unknown block kind: {kind}")

    document.save(str(path))


def main() -> None:
    DOCUMENTS_DIR.mkdir(parents=True, exist_ok=True)
    outputs = [
        (write_pdf, PRODUCT_CATALOG, "product-catalog.pdf", "Brindlemoss Product Catalog 2025"),
        (write_pdf, WARRANTY_POLICY, "warranty-policy.pdf", "Brindlemoss Warranty Policy"),
        (write_docx, INSTALLATION_GUIDE, "installation-guide.docx",
         "Brindlemoss Installation Guide"),
        (write_docx, SEASONAL_CARE_GUIDE, "seasonal-care-guide.docx",
         "Brindlemoss Seasonal Care Guide"),
    ]
    for writer, blocks, name, title in outputs:
        path = DOCUMENTS_DIR / name
        writer(blocks, path, title)
        print(f"wrote {path.relative_to(DOCUMENTS_DIR.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""Camera notices: who runs each camera, why, what leaves the device, how long it is kept.

config.py     the camera registry (typed YAML): operator, installer, purposes, cameras
retention.py  the RetentionSource port (the policy in force) and a file-backed source
view.py       the notice of one camera as data, with its content digest (pure)
archive.py    notice versions: a new version whenever the content (or retention) changes
html.py       the phone-friendly page, Chinese and English
sheet.py      the printable sheet of QR codes, one per camera
"""

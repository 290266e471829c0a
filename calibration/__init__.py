"""The installer's side: the site file (the contract every other part reads) and its checks."""

from calibration.site import Camera, Mask, Site, SiteError, Zone, ZoneType, load_site

__all__ = ["Camera", "Mask", "Site", "SiteError", "Zone", "ZoneType", "load_site"]

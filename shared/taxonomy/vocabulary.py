"""The LAVA taxonomy's closed vocabularies, with their exact values.

Values are the strings LAVA records carry (spaces and slashes included); Ground Truth's shorter
limits are handled by the short-code mapping in ``shared.taxonomy.codes``.
"""

from __future__ import annotations

from enum import StrEnum


class Weather(StrEnum):
    CLEAR = "clear"
    OVERCAST = "overcast"
    PARTLY_CLOUDY = "partly cloudy"
    RAINY = "rainy"
    FOGGY = "foggy"
    UNDEFINED = "undefined"


class TimeOfDay(StrEnum):
    DAYTIME = "daytime"
    NIGHT = "night"
    DAWN_DUSK = "dawn/dusk"
    UNDEFINED = "undefined"


class Scene(StrEnum):
    HIGHWAY = "highway"
    TUNNEL = "tunnel"
    RESIDENTIAL = "residential"
    PARKING_LOT = "parking lot"
    CITY_STREET = "city street"
    GAS_STATION = "gas station"
    INTERSECTION = "intersection"
    ROUNDABOUT = "roundabout"
    SCHOOL_ZONE = "school zone"
    CONSTRUCTION = "construction"
    ENTRANCE = "entrance"
    EXIT = "exit"
    UNDEFINED = "undefined"

    @classmethod
    def _missing_(cls, value: object) -> Scene | None:
        # The source taxonomy spells it "contruction"; accept that on input, emit the right one.
        if value == "contruction":
            return cls.CONSTRUCTION
        return None


class Traffic(StrEnum):
    FREE_FLOWING = "free-flowing"
    STOP_AND_GO = "stop-and-go"
    UNDEFINED = "undefined"


class TrafficDensity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class VehicleType(StrEnum):
    CAR = "car"
    VAN = "van"
    TRUCK = "truck"
    BUS = "bus"
    MOTORBIKE = "motorbike"
    BICYCLE = "bicycle"
    UNDEFINED = "undefined"


class Occlusion(StrEnum):
    NOT_OCCLUDED = "not occluded"
    PARTIALLY_OCCLUDED = "partially occluded"
    MAJOR_OCCLUSION = "major occlusion"


class LaneStyle(StrEnum):
    SOLID = "solid"
    DASHED = "dashed"


class LaneType(StrEnum):
    CROSSWALK = "crosswalk"
    DOUBLE_OTHER = "double other"
    DOUBLE_WHITE = "double white"
    DOUBLE_YELLOW = "double yellow"
    ROAD_CURB = "road curb"
    SINGLE_OTHER = "single other"
    SINGLE_WHITE = "single white"
    SINGLE_YELLOW = "single yellow"


class LaneDirection(StrEnum):
    HORIZONTAL = "horizontal"
    VERTICAL = "vertical"


class LightState(StrEnum):
    RED = "red"
    GREEN = "green"
    YELLOW = "yellow"
    UNDEFINED = "undefined"


class SignType(StrEnum):
    STOP = "stop"
    YIELD = "yield"
    DO_NOT_ENTER = "do not enter"
    WRONG_WAY = "wrong way"
    SCHOOL_ZONE = "school zone"
    RAILROAD = "railroad"
    RED_AND_WHITE_REGULATORY = "red and white regulatory"
    WHITE_REGULATORY = "white regulatory"
    HIGHWAY_CONSTRUCTION_AND_MAINTENANCE = "highway construction and maintenance"
    WARNING = "warning"


class LampState(StrEnum):
    """State of a vehicle's head or tail light (an internal part of the vehicle)."""

    ON = "on"
    OFF = "off"
    UNDEFINED = "undefined"


class ObjectClass(StrEnum):
    """The object classes a LAVA frame holds."""

    IGNORE = "ignore"
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    LANE = "lane"
    TRAFFIC_LIGHT = "traffic_light"
    TRAFFIC_SIGN = "traffic_sign"

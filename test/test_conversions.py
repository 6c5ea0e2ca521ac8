"""Images between numpy and sensor_msgs/Image, through cv_bridge and through the hand-written
fallback, both ways and across encodings; malformed ones are clear errors, never a dead node."""
import numpy as np
import pytest

from robofail_ros.msg import FailureMode
from robofail_ros.nodes.conversions import BRIDGE, image_to_msg, modes_to_markers, msg_to_image

pytestmark = [pytest.mark.ros]
IMAGE = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)


@pytest.mark.parametrize("bridge", [BRIDGE, None], ids=["cv_bridge", "fallback"])
def test_images_round_trip_and_agree_between_cv_bridge_and_the_fallback(bridge):
    msg = image_to_msg(IMAGE, bridge=bridge)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 48, 64, 64 * 3)
    assert (msg_to_image(msg, bridge=bridge) == IMAGE).all()
    assert bytes(msg.data) == bytes(image_to_msg(IMAGE, bridge=None).data)  # same bytes either way
    bgr = image_to_msg(IMAGE[..., ::-1].copy(), bridge=None)
    bgr.encoding = "bgr8"  # what an OpenCV-based node of the user's might send
    assert (msg_to_image(bgr, bridge=bridge) == IMAGE).all()


def test_cv_bridge_is_there_in_the_venv():
    assert BRIDGE is not None, "requirements.txt installs cv-bridge; the hand-written conversion is only the fallback"


def test_the_fallback_refuses_an_encoding_it_cannot_read():
    msg = image_to_msg(IMAGE, bridge=None)
    msg.encoding = "mono16"
    with pytest.raises(ValueError, match="install cv_bridge for other encodings"):
        msg_to_image(msg, bridge=None)


@pytest.mark.parametrize("bridge", [BRIDGE, None], ids=["cv_bridge", "fallback"])
def test_an_image_whose_data_does_not_fill_it_is_a_clear_error(bridge):
    msg = image_to_msg(IMAGE, bridge=None)
    msg.data = bytes(msg.data)[:100]
    with pytest.raises(ValueError, match="64x48 'rgb8' image of 100 bytes|64x48 rgb8 image needs 9216 bytes, got 100"):
        msg_to_image(msg, bridge=bridge)


class Broken:
    name, cameras, observation_keys = "broken", (), ("robot0_eef_pos",)

    def start_episode(self, seed):
        pass

    def act(self, obs):
        raise ValueError("weights went NaN")


def test_a_policy_that_raises_answers_with_an_error_not_silence():
    from robofail_ros.core.policies import load_policy
    from robofail_ros.nodes.conversions import obs_to_msg
    from robofail_ros.nodes.policy_node import answer
    obs = {"robot0_eef_pos": np.array([0.1, 0.0, 1.0]), "cube_pos": np.array([0.0, 0.0, 0.82])}
    msg = obs_to_msg(obs, ["robot0_eef_pos", "cube_pos"], episode_id=4, step=0, seed=7)
    reply = answer(Broken(), msg)
    assert (reply.episode_id, reply.step, list(reply.action)) == (4, 0, [])
    assert reply.error == "policy 'broken' raised ValueError: weights went NaN"
    good = answer(load_policy("scripted"), msg)  # the same path answers a working policy with its action
    assert good.error == "" and len(good.action) == 7
    Broken.observation_keys = ("agentview_image",)
    assert "needs observation keys ['agentview_image']" in answer(Broken(), msg).error
    # A malformed observation (a foreign publisher's, say) is answered with what is wrong, not a dead node.
    msg.low_dim_sizes = [3, 5]
    reply = answer(load_policy("scripted"), msg)
    assert reply.error == ("policy 'scripted' got a malformed observation: 2 low-dim keys with 2 sizes summing to 8 "
                           "for 6 values, 0 image keys for 0 images")
    msg.low_dim_sizes = [3, 3]
    msg.image_keys, msg.images = ["agentview_image"], [image_to_msg(IMAGE)]
    msg.images[0].data = bytes(msg.images[0].data)[:100]
    assert answer(load_policy("scripted"), msg).error.startswith("policy 'scripted' got a malformed observation: "
                                                                 "agentview_image: ")


def test_the_rviz_labels_carry_each_mode_s_class_and_never_show_an_untried_mode_as_zero():
    modes = [FailureMode(name="small_table", probability=1.0, status="fails", rank=1),
             FailureMode(name="object_left", probability=0.25, status="undecided"),
             FailureMode(name="red_table", probability=0.0, status="untried")]
    markers = modes_to_markers(modes).markers
    labels = [m.text for m in markers if m.ns == "labels"]
    assert labels == ["small_table 1.00 fails #1", "object_left 0.25 undecided", "red_table untried"]
    bars = [m for m in markers if m.ns == "bars"]
    assert bars[0].color.g < bars[0].color.r and bars[1].color.r == bars[1].color.g == bars[1].color.b


def test_query_and_run_print_an_untried_mode_as_a_dash_and_every_mode_s_class(capsys):
    from robofail_ros.nodes.commands import print_modes
    print_modes([FailureMode(name="small_table", probability=1.0, ci_low=0.6, ci_high=1.0, cs_low=0.24, cs_high=1.0,
                             trials=6, failures=6, status="fails", rank=1),
                 FailureMode(name="red_table", status="untried")], "empirical")
    small, red = capsys.readouterr().out.splitlines()[1:]
    assert small.split()[:5] == ["small_table", "fails", "1", "1.000", "[0.60,"]
    assert red.split() == ["red_table", "untried", "-", "-", "-", "0/0"]

"""Paraphrase checks: utterances written for these tests (not quotes) in the style of the real
ones, to catch rules that only memorise the development set."""

import pytest

from compliance.detect import detect_text, load_packs


@pytest.fixture(scope="module")
def eng():
    return load_packs()


def _lang(t):
    return "en" if t.isascii() else "zh"


AGENT_VIOLATIONS = ['这个产品您放心，本金是有保障的', '我们这个理财从来没有亏过钱', '放心吧，到期肯定连本带利给您', '这款产品收益稳定，每年都有百分之四点五', '跟您说实话，这个就跟定期存款一样，就是利息高一点', '您就当是存了一笔定期', '这个基金收益很高，基本没什么风险', '保证您一年能赚八个点', '这个产品是我们银行担保的', '亏了的话银行会给您兜底', '今天是最后一天了，明天就没有这个额度了', '这款产品下周就要停售了，您得抓紧', '风险测评您随便选选就行', '问卷我帮您填好了，您签个字', '您的等级不够没关系，重新做一下测评就能买了', '这个随时都可以取出来，不收任何费用', '退保也不会有损失的', '这款保险就相当于零存整取', '保险其实就是存钱，只不过多了保障', '这个分红每年都有，至少百分之三', '去年收益百分之八，今年肯定也有这么多', '这只基金业绩在全市场排第一', '这款产品绝对是最好的选择', '别家银行的理财都不靠谱', '您把验证码报给我，我帮您操作一下', '这个是国家兜底的，不会有问题', '这个产品零风险，收益还比存款高', '买这个稳赚，不会亏', '收益肯定比存款高，而且本金安全', '这是保本型的理财，您放心买', "It's guaranteed to return 7% every year.", "There's really no risk here, your principal is safe.", "It's just like a savings account but pays more.", 'You need to sign today, the offer closes tonight.', '阿姨您放心，这个钱放我们这儿比放家里还安全', '这个产品收益有百分之五，比定期高多了', '我们这个是银行自己的产品，不会有问题的', '这个您就理解成一个高利息的定期就行', '年化能做到六个点，稳稳的', '这只基金闭着眼买都能赚', '抓紧时间，这批额度卖完就没有了', '测评的时候您选能承受较大亏损就可以了', '您先签字，风险揭示书回头我再给您讲', '这个不用做风险评估，直接买就行', '手续费基本没有，想取随时取', '保险这个东西就是强制储蓄', '现在不买，下个月利率就降了', '我们这个产品收益全行最高', '这个没有任何风险，您放一百个心', '它的历史业绩一直很好，以后也不会差', '您就把它当成存款来看', '只要放满三年，本金和收益都能拿回来', "I promise you won't lose a dime.", 'This fund has never lost money, and it never will.', 'Trust me, this is the safest investment there is.']

AGENT_COMPLIANT = ['这个产品不保本，可能会亏损本金', '理财产品有风险，收益是不确定的', '过往业绩不代表未来表现，投资须谨慎', '我没办法向您保证收益', '这个不是存款，和定期存款是两回事', '您不用急，考虑好了再决定', '风险测评请您按实际情况填写', '这款产品有封闭期，中途不能赎回', '提前退保会有损失，只能拿回现金价值', '分红是不保证的，可能为零', '业绩比较基准是年化3.5%，不代表实际收益', '您的风险等级和这款产品不匹配，我不建议您买', '验证码千万不要告诉任何人，包括银行工作人员', '我们银行不会要求您转账到安全账户', '这个产品的风险等级是R3，属于中风险', '您可以拨打我们的客服电话咨询', '您之前说想要保本的产品，现在理财都不保本了', '有些人说保险就是存钱，这个说法不对', '您问这个是不是保本的，我跟您说，不是的', '这款基金去年的收益率是8%，但过去的业绩不能代表未来', 'Returns are not guaranteed and you may lose money.', 'This is not a deposit and is not FDIC insured.', 'Take your time and read the prospectus.', 'Past performance is no guarantee of future results.', '我不敢跟您说保本，市场有波动的', '保本理财现在已经没有了，都是净值型', '收益稳定不了，要看市场', '您说的那种零风险的产品是不存在的', '我跟您说清楚，这个产品是有可能亏本金的', '这款产品不能随时取，有一年的封闭期', '我们不会替客户做风险测评的', '这不是存款，您一定要分清楚', '年化收益率在宣传材料上是不允许写的', '您要是担心风险，可以考虑定期存款', '这个产品我不推荐您买，风险等级太高了', '如果您现在不着急，可以等下一期', '测评结果是稳健型，只能买R3以下的产品', '您把合同拿回去仔细看，不着急签', '您说的保本保息是以前的产品，现在没有了', '客户问我是不是保本，我说不是', 'There is no guarantee you will make money.', "I can't tell you it's risk-free, because it isn't.", 'Nobody can promise you a fixed return on this fund.']

CUSTOMER_SIGNALS = ['你们这是骗人啊，当初说得好好的', '这钱必须给我退回来', '你们再这样我就去法院起诉', '当时根本没人告诉我有风险', '有个人打电话说我涉嫌洗钱，让我把钱转到安全账户', '我刚才把验证码发给他了', '我在网上投资平台充了十万，现在提不出来', '有人冒充你们银行的客服给我打电话']

CUSTOMER_NEUTRAL = ['好的，我明白了，谢谢你', '那我考虑一下再说', '收益大概多少？', '这个产品风险大吗？', '我先跟家里人商量一下']


@pytest.mark.parametrize("text", AGENT_VIOLATIONS)
def test_agent_violation_paraphrases(eng, text):
    assert detect_text(text, "agent", _lang(text), eng), text


@pytest.mark.parametrize("text", AGENT_COMPLIANT)
def test_agent_compliant_paraphrases(eng, text):
    assert detect_text(text, "agent", _lang(text), eng) == [], text


@pytest.mark.parametrize("text", CUSTOMER_SIGNALS)
def test_customer_signal_paraphrases(eng, text):
    vs = detect_text(text, "customer", "zh", eng)
    assert vs and all(v.kind == "signal" for v in vs), text


@pytest.mark.parametrize("text", CUSTOMER_NEUTRAL)
def test_customer_neutral(eng, text):
    assert detect_text(text, "customer", "zh", eng) == [], text
